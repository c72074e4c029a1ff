// sextant ui: the page's script. Registry data is only ever set as text (textContent, value,
// dataset), never parsed as HTML.
"use strict";

(function () {
  const meta = (name) => {
    const m = document.querySelector('meta[name="' + name + '"]');
    return m ? m.getAttribute("content") : "";
  };
  const csrf = meta("csrf-token");
  const readOnly = meta("read-only") === "true";
  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function showError(message) {
    const box = $("error");
    if (message) {
      box.textContent = message;
      box.hidden = false;
    } else {
      box.textContent = "";
      box.hidden = true;
    }
  }

  // One request to the API: the parsed JSON body (or {error}) and the status.
  async function api(method, path, body) {
    const init = { method, headers: {}, credentials: "same-origin" };
    if (method !== "GET") {
      init.headers["X-CSRF-Token"] = csrf;
      init.headers["Content-Type"] = "application/json";
      init.body = typeof body === "string" ? body : JSON.stringify(body || {});
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      return { status: 0, data: { error: "the UI server cannot be reached: " + e.message } };
    }
    let data;
    try {
      data = await response.json();
    } catch (e) {
      data = { error: "HTTP " + response.status + " " + response.statusText };
    }
    if (response.status === 401) {
      location.reload(); // the session is gone: the server shows the login form
    }
    return { status: response.status, data };
  }

  // ---------------------------------------------------------------- routing

  function route() {
    const hash = location.hash || "#/";
    const m = hash.match(/^#\/service\/(.+)$/);
    if (m) {
      let name;
      try {
        name = decodeURIComponent(m[1]);
      } catch (e) {
        name = m[1];
      }
      return { view: "service", name };
    }
    return { view: "services" };
  }

  let current = route();

  async function render() {
    current = route();
    $("services-view").hidden = current.view !== "services";
    $("service-view").hidden = current.view !== "service";
    if (current.view === "services") {
      await renderServices();
    } else {
      await renderService(current.name);
    }
  }

  // ---------------------------------------------------------------- services

  let services = [];

  async function renderServices() {
    const { status, data } = await api("GET", "/api/services");
    if (status !== 200) {
      showError(data.error || "cannot list the services");
      return;
    }
    showError("");
    $("registry").textContent = data.registry + " " + data.base;
    services = data.services || [];
    drawServices();
  }

  function drawServices() {
    const filter = $("filter").value.trim().toLowerCase();
    const body = $("services").tBodies[0];
    const rows = [];
    let shown = 0;
    let servers = 0;
    for (const s of services) {
      if (filter && !s.name.toLowerCase().includes(filter)) continue;
      shown++;
      servers += s.servers;
      const tr = el("tr", null, "service-row");
      tr.dataset.service = s.name;
      const td = el("td");
      const a = el("a", s.name);
      a.href = "#/service/" + encodeURIComponent(s.name);
      td.appendChild(a);
      tr.appendChild(td);
      tr.appendChild(el("td", s.servers, "num servers"));
      tr.appendChild(el("td", s.active, "num active"));
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    $("summary").textContent =
      shown + " of " + services.length + " services, " + servers + " servers";
  }

  // ---------------------------------------------------------------- one service

  let serverList = [];

  async function renderService(name) {
    $("service-name").textContent = name;
    const { status, data } = await api("GET", "/api/services/" + encodeURIComponent(name));
    if (status !== 200) {
      showError(data.error || "cannot read the service");
      $("servers").tBodies[0].replaceChildren();
      serverList = [];
      fillCallServers(name);
      return;
    }
    showError("");
    serverList = data.servers || [];
    drawServers(name);
    fillCallServers(name);
  }

  const probes = new Map(); // address -> text shown in the Health cell

  function drawServers(name) {
    const rows = serverList.map((s) => {
      const tr = el("tr", null, "server-row");
      tr.dataset.address = s.address;
      tr.appendChild(el("td", s.address, "address"));
      tr.appendChild(el("td", s.group || "-", "group"));
      tr.appendChild(el("td", s.weight || "-", "num weight"));
      tr.appendChild(
        el("td", s.active ? "active" : "inactive", "state " + (s.active ? "state-active" : "state-inactive"))
      );
      tr.appendChild(el("td", s.calls || "-", "num calls"));
      tr.appendChild(el("td", s.tps || "-", "num tps"));
      const meta = el("td", null, "meta");
      if (!s.valid) {
        meta.appendChild(el("span", "not a query string", "flag"));
        meta.classList.add("invalid");
      }
      if (s.valid) {
        // The metadata decoded, one key=value a line; the stored query string as the tooltip.
        meta.title = s.value;
        for (const k of Object.keys(s.metadata || {})) {
          meta.appendChild(el("div", k + "=" + s.metadata[k], "pair"));
        }
      } else {
        meta.appendChild(el("span", s.value, "value"));
      }
      tr.appendChild(meta);

      const health = el("td", null, "health");
      const probeButton = el("button", "Probe", "probe");
      probeButton.type = "button";
      probeButton.addEventListener("click", () => probe(name, s.address, tr));
      health.appendChild(probeButton);
      const result = el("span", probes.get(s.address) || "", "probe-result");
      health.appendChild(result);
      tr.appendChild(health);

      const actions = el("td", null, "change actions");
      if (!readOnly) {
        const toggle = el("button", s.active ? "Deactivate" : "Activate", "toggle-state");
        toggle.type = "button";
        toggle.disabled = !s.valid;
        toggle.addEventListener("click", () => setState(name, s.address, !s.active));
        actions.appendChild(toggle);
        const edit = el("button", "Edit", "edit");
        edit.type = "button";
        edit.disabled = !s.valid;
        edit.addEventListener("click", () => openEdit(s));
        actions.appendChild(edit);
      }
      tr.appendChild(actions);
      return tr;
    });
    $("servers").tBodies[0].replaceChildren(...rows);
  }

  function serverPath(name, address, what) {
    return (
      "/api/services/" + encodeURIComponent(name) + "/servers/" + encodeURIComponent(address) + "/" + what
    );
  }

  async function setState(name, address, active) {
    const { status, data } = await api("POST", serverPath(name, address, "state"), { active });
    if (status !== 200) {
      showError(data.error || "the change failed");
      return;
    }
    showError("");
    await renderService(name);
  }

  async function probe(name, address, tr) {
    const cell = tr.querySelector(".probe-result");
    cell.textContent = " probing...";
    const { status, data } = await api("POST", "/api/probe", { service: name, address });
    let text;
    if (status === 200 && data.ok) {
      text = " ok " + data.rtt_ms.toFixed(2) + " ms";
      cell.className = "probe-result ok";
    } else {
      text = " " + (data.error || "failed");
      cell.className = "probe-result bad";
    }
    probes.set(address, text);
    // The row may have been redrawn meanwhile: set the text on the live one.
    for (const row of $("servers").tBodies[0].rows) {
      if (row.dataset.address === address) {
        const c = row.querySelector(".probe-result");
        c.textContent = text;
        c.className = cell.className;
      }
    }
  }

  // ---------------------------------------------------------------- edit form

  let editing = null;

  function openEdit(s) {
    editing = s.address;
    $("edit-address").textContent = s.address;
    const lines = Object.keys(s.metadata || {})
      .filter((k) => !["calls", "connections", "tps"].includes(k))
      .map((k) => k + "=" + s.metadata[k]);
    $("edit-pairs").value = lines.join("\n");
    $("edit-unset").value = "";
    $("edit-result").textContent = "";
    $("edit-panel").hidden = false;
  }

  async function saveEdit(event) {
    event.preventDefault();
    if (!editing) return;
    const set = $("edit-pairs")
      .value.split("\n")
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    const unset = $("edit-unset")
      .value.split(/\s+/)
      .filter((k) => k.length > 0);
    const result = $("edit-result");
    result.textContent = "saving...";
    const { status, data } = await api("POST", serverPath(current.name, editing, "metadata"), {
      set,
      unset,
    });
    if (status === 200) {
      result.textContent = "saved: " + data.value;
      result.className = "result ok";
      await renderService(current.name);
    } else {
      result.textContent = "error " + status + ": " + (data.error || "the edit failed");
      result.className = "result bad";
    }
  }

  // ---------------------------------------------------------------- call form

  function fillCallServers(name) {
    const select = $("call-server");
    const chosen = select.value;
    const options = serverList.map((s) => {
      const o = el("option", s.address);
      o.value = s.address;
      return o;
    });
    select.replaceChildren(...options);
    if (serverList.some((s) => s.address === chosen)) select.value = chosen;
    if ($("call-service").dataset.for !== name) {
      $("call-service").value = name;
      $("call-service").dataset.for = name;
    }
  }

  async function submitCall(event) {
    event.preventDefault();
    const out = $("call-result");
    out.textContent = "calling...";
    out.className = "result";
    const { status, data } = await api("POST", "/api/call", {
      address: $("call-server").value,
      service: $("call-service").value,
      method: $("call-method").value,
      codec: $("call-codec").value,
      args: $("call-args").value,
    });
    if (status === 200 && data.ok) {
      out.textContent = data.reply;
      out.className = "result ok";
    } else {
      out.textContent = "error: " + (data.error || "HTTP " + status);
      out.className = "result bad";
    }
  }

  // ---------------------------------------------------------------- live refresh

  let pending = false;
  function refreshSoon() {
    if (pending) return;
    pending = true;
    setTimeout(async () => {
      pending = false;
      await render();
    }, 100);
  }

  function listen() {
    const live = $("live");
    const events = new EventSource("/api/events");
    events.addEventListener("changed", () => {
      live.classList.remove("down");
      refreshSoon();
    });
    events.addEventListener("open", () => live.classList.remove("down"));
    events.addEventListener("error", () => live.classList.add("down"));
  }

  // ---------------------------------------------------------------- start

  document.addEventListener("DOMContentLoaded", () => {
    if (readOnly) {
      document.body.classList.add("read-only");
      $("mode").textContent = "read-only";
    }
    if (meta("login") === "true") {
      const out = $("logout");
      out.hidden = false;
      out.addEventListener("click", async () => {
        await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf } });
        location.reload();
      });
    }
    $("filter").addEventListener("input", drawServices);
    $("edit-panel").addEventListener("submit", saveEdit);
    $("edit-cancel").addEventListener("click", () => {
      editing = null;
      $("edit-panel").hidden = true;
    });
    $("call-panel").addEventListener("submit", submitCall);
    window.addEventListener("hashchange", () => {
      $("edit-panel").hidden = true;
      editing = null;
      render();
    });
    document.body.dataset.ready = "true";
    render();
    listen();
  });
})();
