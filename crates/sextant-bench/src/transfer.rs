//! File transfer throughput (`sextant-bench transfer`): a file uploaded and downloaded through
//! sextant's `_filetransfer` (`XClient::send_file` into `SaveToDir`, `XClient::download_file`
//! from `ServeDir`) against a plain tokio TCP copy of the same file (file to socket, socket to
//! file, on 127.0.0.1), in one process and one run, plus the process' peak resident memory (the
//! transfers must not hold the file in memory).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sextant::discovery::Peer2PeerDiscovery;
use sextant::transfer::{FileTransfer, SaveToDir, ServeDir};
use sextant::{Server, XClient};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const BUF: usize = 256 * 1024;

/// Reads a line of `/proc/self/status` in KiB (`VmHWM`: peak RSS; `VmRSS`: now).
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Writes `size` bytes to `path` (a repeating 1 MiB pattern).
async fn make_file(path: &Path, size: u64) -> anyhow::Result<()> {
    let pattern: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let mut f = tokio::fs::File::create(path).await?;
    let mut left = size;
    while left > 0 {
        let n = left.min(pattern.len() as u64) as usize;
        f.write_all(&pattern[..n]).await?;
        left -= n as u64;
    }
    f.flush().await?;
    Ok(())
}

/// A plain tokio copy of `src` to `dst` over one loopback TCP connection: file to socket on
/// one side, socket to file on the other, with 256 KiB buffers as sextant's transfers use.
/// Returns the time until the receiver has it all.
async fn plain_copy(src: &Path, dst: &Path) -> anyhow::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let dst = dst.to_path_buf();
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        let (conn, _) = listener.accept().await?;
        let mut conn = BufReader::with_capacity(BUF, conn);
        let mut file = tokio::fs::File::create(&dst).await?;
        tokio::io::copy_buf(&mut conn, &mut file).await?;
        file.flush().await?;
        anyhow::Ok(())
    });
    let mut conn = TcpStream::connect(addr).await?;
    let mut file = BufReader::with_capacity(BUF, tokio::fs::File::open(src).await?);
    tokio::io::copy_buf(&mut file, &mut conn).await?;
    conn.shutdown().await?;
    receiver.await??;
    Ok(started.elapsed())
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat` (Linux; 0
/// elsewhere).
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// Wall time and CPU time of `f`.
async fn measure<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: F,
) -> anyhow::Result<(Duration, f64)> {
    let (t, c) = (Instant::now(), cpu_secs());
    f.await?;
    Ok((t.elapsed(), cpu_secs() - c))
}

fn mb_per_s(size: u64, d: Duration) -> f64 {
    size as f64 / d.as_secs_f64() / 1e6
}

/// Runs `rounds` rounds of: plain copy up, sextant upload, plain copy down, sextant download,
/// with a file of `size` bytes in `dir` (a temporary directory when `None`), and prints one
/// JSON line per measurement and a summary line with the medians, the ratios and peak RSS.
pub async fn transfer(size: u64, rounds: usize, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let tmp = match &dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let root = tmp.path();
    let (local, served, incoming) = (root.join("local"), root.join("served"), root.join("in"));
    for d in [&local, &served, &incoming] {
        std::fs::create_dir_all(d)?;
    }
    let source = local.join("big.bin");
    make_file(&source, size)
        .await
        .context("writing the test file")?;
    std::fs::hard_link(&source, served.join("big.bin"))
        .or_else(|_| std::fs::copy(&source, served.join("big.bin")).map(|_| ()))?;
    let rss_start = status_kib("VmRSS:");

    let server = Server::new();
    server
        .enable_file_transfer(
            "",
            FileTransfer::new("127.0.0.1:0")
                .upload(SaveToDir::new(&incoming))
                .download(ServeDir::new(&served)),
        )
        .await?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    let xclient = XClient::builder("_filetransfer")
        .discovery(Peer2PeerDiscovery::new(address, "")?)
        .build()?;

    // For each of plain up, upload, plain down, download: MB/s and CPU seconds per GiB.
    let mut rate: [Vec<f64>; 4] = Default::default();
    let mut cpu: [Vec<f64>; 4] = Default::default();
    let gib = size as f64 / (1u64 << 30) as f64;
    for round in 0..rounds {
        let plain_up = root.join("plain-up.bin");
        let m0 = measure(async {
            plain_copy(&source, &plain_up).await?;
            Ok(())
        })
        .await?;
        std::fs::remove_file(&plain_up)?;

        let m1 = measure(async {
            xclient.send_file(&source, 0, HashMap::new()).await?;
            let stored = std::fs::metadata(incoming.join("big.bin"))?.len();
            anyhow::ensure!(stored == size, "stored {stored} of {size} bytes");
            Ok(())
        })
        .await?;
        std::fs::remove_file(incoming.join("big.bin"))?;

        let plain_down = root.join("plain-down.bin");
        let m2 = measure(async {
            plain_copy(&served.join("big.bin"), &plain_down).await?;
            Ok(())
        })
        .await?;
        std::fs::remove_file(&plain_down)?;

        let down = root.join("down.bin");
        let m3 = measure(async {
            let mut out = tokio::fs::File::create(&down).await?;
            let n = xclient
                .download_file("big.bin", &mut out, HashMap::new())
                .await?;
            anyhow::ensure!(n == size, "downloaded {n} of {size} bytes");
            Ok(())
        })
        .await?;
        std::fs::remove_file(&down)?;

        for (i, (d, c)) in [m0, m1, m2, m3].into_iter().enumerate() {
            rate[i].push(mb_per_s(size, d));
            cpu[i].push(c / gib);
        }
        eprintln!(
            "round {}: MB/s plain up {:.0}, upload {:.0}, plain down {:.0}, download {:.0}; CPU s/GiB {:.2} {:.2} {:.2} {:.2}",
            round + 1,
            rate[0][round],
            rate[1][round],
            rate[2][round],
            rate[3][round],
            cpu[0][round],
            cpu[1][round],
            cpu[2][round],
            cpu[3][round],
        );
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let r: Vec<f64> = rate.iter().map(|v| median(v)).collect();
    let c: Vec<f64> = cpu.iter().map(|v| median(v)).collect();
    println!(
        "{{\"peer\":\"{}\",\"size\":{size},\"rounds\":{rounds},\"plain_up_mb_s\":{:.0},\"upload_mb_s\":{:.0},\"upload_ratio\":{:.2},\"plain_down_mb_s\":{:.0},\"download_mb_s\":{:.0},\"download_ratio\":{:.2},\"cpu_s_per_gib\":[{:.2},{:.2},{:.2},{:.2}],\"rss_start_kib\":{rss_start},\"rss_peak_kib\":{}}}",
        crate::PEER,
        r[0],
        r[1],
        r[1] / r[0],
        r[2],
        r[3],
        r[3] / r[2],
        c[0],
        c[1],
        c[2],
        c[3],
        status_kib("VmHWM:")
    );
    xclient.close();
    server.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}
