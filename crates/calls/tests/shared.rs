//! The counters nodes share, against a real Redis (Debian's `redis-server`, started on a free
//! loopback port): caps checked and taken in one step, an answer that comes after the hang-up,
//! and the calls no node keeps alive.

use callopt_calls::{SharedCounters, Slot};
use callopt_domain::Caps;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn redis(dir: &std::path::Path) -> (Redis, SharedCounters) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (Debian's redis-server package)");
    let server = Redis(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("redis://127.0.0.1:{port}");
    (server, SharedCounters::connect(&url).await.unwrap())
}

/// Far-off period ends: the counters of one hour, day and month.
const PERIODS: [i64; 3] = [4_000_000_000_000, 4_000_000_000_001, 4_000_000_000_002];

#[tokio::test]
async fn caps_are_checked_and_taken_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, shared) = redis(dir.path()).await;
    let caps = Caps {
        concurrent: Some(2),
        hourly: Some(3),
        ..Caps::default()
    };
    // Two nodes' worth of callers at once: exactly two get the two slots.
    let mut tries = tokio::task::JoinSet::new();
    for call in 0..20 {
        let shared = shared.clone();
        tries.spawn(async move { shared.reserve(&Slot::new(7, call), &caps, &PERIODS).await });
    }
    let mut reserved = Vec::new();
    while let Some(r) = tries.join_next().await {
        reserved.push(r.unwrap().unwrap());
    }
    assert_eq!(reserved.iter().filter(|r| **r).count(), 2);

    // Answered then released: the slots free up, the hour keeps its count.
    let held: Vec<u64> = {
        let mut held = Vec::new();
        for call in 0..20u64 {
            if shared
                .reserve(&Slot::new(7, call), &caps, &PERIODS)
                .await
                .unwrap()
            {
                held.push(call);
            }
        }
        held
    };
    assert_eq!(held.len(), 2, "the same two calls hold the slots: {held:?}");
    for call in &held {
        shared
            .answered(&Slot::new(7, *call), &PERIODS)
            .await
            .unwrap();
        shared.released(&Slot::new(7, *call)).await.unwrap();
    }
    // Two connected this hour, cap 3: one more may ring, not two.
    assert!(shared
        .reserve(&Slot::new(7, 100), &caps, &PERIODS)
        .await
        .unwrap());
    assert!(!shared
        .reserve(&Slot::new(7, 101), &caps, &PERIODS)
        .await
        .unwrap());
    // Another target's caps are its own.
    assert!(shared
        .reserve(&Slot::new(8, 101), &caps, &PERIODS)
        .await
        .unwrap());
}

#[tokio::test]
async fn an_answer_after_the_hang_up_does_not_hold_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, shared) = redis(dir.path()).await;
    let caps = Caps {
        concurrent: Some(1),
        ..Caps::default()
    };
    let call = Slot::new(3, 1);
    assert!(shared.reserve(&call, &caps, &PERIODS).await.unwrap());
    shared.released(&call).await.unwrap();
    shared.answered(&call, &PERIODS).await.unwrap();
    shared
        .keep_alive(std::slice::from_ref(&call))
        .await
        .unwrap();
    assert!(
        shared
            .reserve(&Slot::new(3, 2), &caps, &PERIODS)
            .await
            .unwrap(),
        "the slot is free"
    );
    assert!(!shared
        .reserve(&Slot::new(3, 3), &caps, &PERIODS)
        .await
        .unwrap());
}
