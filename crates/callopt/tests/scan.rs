//! End-to-end tests of `callopt scan`: the real binary against corpus pages served from a
//! loopback server on port 0, and against corpus files.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_callopt");

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scan/tests/corpus")
        .join(rel)
}

/// Serves a corpus locker (with its external script) and a redirect to it on loopback; the
/// base URL.
fn serve() -> String {
    use axum::{response::Redirect, routing::get, Router};
    let page = std::fs::read_to_string(corpus("scam/external_1_fr.html")).unwrap();
    let script = std::fs::read_to_string(corpus("scam/js/kit1.js")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new()
                .route(
                    "/scam/page.html",
                    get(move || async move { axum::response::Html(page) }),
                )
                .route("/scam/js/kit1.js", get(move || async move { script }))
                .route(
                    "/go",
                    get(|| async { Redirect::temporary("/scam/page.html") }),
                );
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    format!("http://{addr}")
}

fn scan(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("scan")
        .args(args)
        .output()
        .expect("run callopt scan")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn refuses_loopback_unless_allowed() {
    let base = serve();
    let url = format!("{base}/go");
    let refused = scan(&[&url]);
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    assert!(
        stdout(&refused).contains("not a public address"),
        "{}",
        stdout(&refused)
    );

    let named = scan(&[&url.replace("127.0.0.1", "localhost")]);
    assert_eq!(named.status.code(), Some(2), "{}", stdout(&named));

    let allowed = scan(&["--allow-private", &url]);
    let out = stdout(&allowed);
    assert_eq!(allowed.status.code(), Some(1), "{out}");
    assert!(out.contains(": scam (score"), "{out}");
    // the locker lives in the external script: it was fetched and read
    assert!(out.contains("kit1.js, line"), "{out}");
    assert!(
        out.contains("1 scanned: 1 scam, 0 review, 0 clean, 0 failed"),
        "{out}"
    );
}

#[test]
fn json_output_has_a_line_per_input_and_a_summary() {
    let scam = corpus("scam/combo_1_en.html");
    let legit = corpus("legit/trade_1_en.html");
    let missing = corpus("legit/no-such-page.html");
    let o = scan(&[
        "--json",
        scam.to_str().unwrap(),
        legit.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["verdict"], "scam");
    assert!(lines[0]["score"].as_f64().unwrap() > 0.0);
    assert!(lines[0]["rule"].is_string());
    let findings = lines[0]["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["code"] == "fullscreen_auto"
        && f["kind"] == "locking"
        && f["weight"].as_f64() == Some(4.0)
        && f["location"].as_str().unwrap().contains("line")));
    assert_eq!(lines[1]["verdict"], "clean");
    assert!(lines[2]["error"].is_string());
    assert_eq!(
        lines[3]["summary"],
        serde_json::json!({"inputs": 3, "scam": 1, "review": 0, "clean": 1, "failed": 1})
    );
}

#[test]
fn clean_inputs_exit_zero() {
    let o = scan(&[corpus("legit/game_3.html").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains(": clean"));
}
