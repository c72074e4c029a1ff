//! What the CLI tests share: running the `sextant` binary to its end, bounded in time.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The longest a one-shot `sextant` command may run: it is killed after that.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// The `sextant` binary this test target was built with.
pub fn sextant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sextant"))
}

/// Runs `command` (a [`sextant`] with its arguments and environment) to the end with `stdin`
/// written to it, its output captured; a process still running after [`RUN_LIMIT`] is killed.
pub fn run_to_end(mut command: Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the sextant binary");
    if let Some(mut input) = child.stdin.take() {
        // A command that does not read its stdin closes it: that is not an error here.
        let _ = input.write_all(stdin);
    }
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        if rx.recv_timeout(RUN_LIMIT).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let out = child.wait_with_output().expect("wait for sextant");
    let _ = tx.send(());
    let _ = killer.join();
    out
}
