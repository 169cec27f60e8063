//! A running `callopt serve` for the binary's end-to-end tests: HTTP and the SIP router on
//! loopback port 0, ready once it prints both addresses, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The service under test, with its HTTP base URL and SIP address.
pub struct Service {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub http: String,
    /// `127.0.0.1:PORT` of the SIP router (UDP and TCP).
    pub sip: String,
}

impl Service {
    /// Starts `bin serve` on the database `db` with these extra environment variables; its
    /// stderr goes to `callopt.stderr` in `dir`, and the log is shown if it does not print its
    /// addresses within 30 s.
    pub fn start(bin: &str, dir: &Path, db: &str, env: &[(&str, &str)]) -> Self {
        let stderr = dir.join("callopt.stderr");
        let mut command = Command::new(bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--db", db])
            .args(["--sip-listen", "127.0.0.1:0"])
            .env("CALLOPT_LOG", "warn")
            // Tests serve their pages and verification files on loopback.
            .env("CALLOPT_GUARD_ALLOW_PRIVATE", "true");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start callopt");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut http, mut sip) = (None, None);
        while http.is_none() || sip.is_none() {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| {
                    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
                    panic!("callopt printed no addresses within 30 s: {log}")
                });
            if let Some(rest) = line.strip_prefix("listening on ") {
                http = Some(rest.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("sip on udp:") {
                sip = rest.split_whitespace().next().map(str::to_string);
            }
        }
        Self {
            child,
            http: http.unwrap(),
            sip: sip.unwrap(),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
