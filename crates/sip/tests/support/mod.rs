//! The sipp harness shared by the router's tests and the binary's end-to-end call tests:
//! scenario files from `tests/sip/` (and the router's own from `crates/sip/tests/scenarios/`),
//! free ports, and sipp processes killed when dropped.
#![allow(dead_code)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A scenario file: the router's own (`crates/sip/tests/scenarios/`) or the shared ones of
/// `tests/sip/`.
pub fn scenario(name: &str) -> PathBuf {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let own = crates.join("sip/tests/scenarios").join(name);
    if own.exists() {
        return own;
    }
    crates.join("../tests/sip").join(name)
}

/// A port no one listens on right now (UDP and TCP).
pub fn free_port() -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running sipp process, killed when dropped.
pub struct Sipp {
    child: Child,
    /// The port sipp listens on.
    pub port: u16,
    name: String,
    dir: PathBuf,
}

impl Sipp {
    /// Starts sipp on a free port and waits until it holds the port (retrying on collision).
    pub fn start(dir: &Path, scenario_file: &str, args: &[&str]) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let sipp = Self::spawn(dir, scenario_file, port, args);
            if let Some(s) = sipp.wait_bound() {
                return s;
            }
        }
        panic!("sipp could not bind a port");
    }

    pub fn spawn(dir: &Path, scenario_file: &str, port: u16, args: &[&str]) -> Self {
        let name = format!("{}-{port}", scenario_file.trim_end_matches(".xml"));
        let port_s = port.to_string();
        let err_file = dir.join(format!("{name}.errors.log"));
        let mut cmd = Command::new("sipp");
        cmd.current_dir(dir)
            .arg("-sf")
            .arg(scenario(scenario_file))
            .args(["-i", "127.0.0.1", "-p", &port_s, "-nostdin", "-trace_err"])
            .arg("-error_file")
            .arg(&err_file)
            .args(["-timeout", "25s", "-timeout_error"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join(format!("{name}.out"))).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap());
        Self {
            child: cmd
                .spawn()
                .expect("sipp (Debian package sip-tester) is installed"),
            port,
            name,
            dir: dir.to_path_buf(),
        }
    }

    /// Waits until sipp holds its port; `None` if sipp exited first (port collision).
    pub fn wait_bound(mut self) -> Option<Self> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return None;
            }
            // A UDP sipp holds the UDP port; a TCP one (`-t t1`) the TCP port.
            if UdpSocket::bind(("127.0.0.1", self.port)).is_err()
                || std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err()
            {
                return Some(self);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Waits for sipp to exit; its exit code.
    pub fn wait(mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits and asserts a clean exit (every call succeeded), showing sipp's logs otherwise.
    pub fn expect_success(self) {
        let (dir, name) = (self.dir.clone(), self.name.clone());
        let code = self.wait();
        if code != 0 {
            let read = |ext: &str| {
                std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).unwrap_or_default()
            };
            let out = read("out");
            let tail: String = out
                .chars()
                .rev()
                .take(3000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!(
                "{name} exited {code}\nerrors:\n{}\nstderr:\n{}\nstdout tail:\n{tail}",
                read("errors.log"),
                read("err")
            );
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
