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

/// Serves `app` on a loopback port 0 from a thread of its own; the address.
fn spawn_server(app: axum::Router) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Serves a corpus locker (with its external script) and a redirect to it on loopback; the
/// base URL.
fn serve() -> String {
    use axum::{response::Redirect, routing::get, Router};
    let page = std::fs::read_to_string(corpus("scam/external_1_fr.html")).unwrap();
    let script = std::fs::read_to_string(corpus("scam/js/kit1.js")).unwrap();
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
    format!("http://{}", spawn_server(app))
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

fn dynamic_page(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scan/tests/dynamic")
        .join(name)
}

/// Serves `pages` (path, body) on loopback, counting every request; the base URL and the count.
fn serve_counting(
    pages: Vec<(&'static str, String)>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        counted.fetch_add(1, Ordering::SeqCst);
        let body = pages
            .iter()
            .find(|(p, _)| *p == uri.path())
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
        }
    });
    (format!("http://{}", spawn_server(app)), hits)
}

#[test]
fn dynamic_analysis_runs_what_static_analysis_cannot_read() {
    let read = |name: &str| std::fs::read_to_string(dynamic_page(name)).unwrap();
    let (base, hits) = serve_counting(vec![
        ("/locker.html", read("packed_locker.html")),
        ("/trap.html", read("packed_trap.html")),
        ("/game.html", read("game.html")),
    ]);
    let urls = ["locker", "trap", "game"].map(|p| format!("{base}/{p}.html"));

    // Read only, the packed pages are a string each: nothing to go on.
    let plain = scan(&["--allow-private", "--json", &urls[0], &urls[1], &urls[2]]);
    let verdicts = |o: &Output| -> Vec<Value> {
        stdout(o)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v.get("summary").is_none())
            .collect()
    };
    for v in verdicts(&plain) {
        assert_ne!(v["verdict"], "scam", "{v}");
    }
    assert_eq!(plain.status.code(), Some(0), "{}", stdout(&plain));

    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    let run = scan(&[
        "--allow-private",
        "--dynamic",
        "--json",
        &urls[0],
        &urls[1],
        &urls[2],
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", stdout(&run));
    let found = verdicts(&run);
    let codes = |v: &Value| -> Vec<String> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    };
    let has_all = |v: &Value, wanted: &[&str]| {
        let found = codes(v);
        for code in wanted {
            assert!(found.iter().any(|c| c == code), "{code}: {v}");
        }
    };
    let (locker, trap, game) = (&found[0], &found[1], &found[2]);
    assert_eq!(locker["verdict"], "scam", "{locker}");
    has_all(
        locker,
        &[
            "fullscreen_auto",
            "dialog_loop",
            "escape_blocked",
            "do_not_close",
        ],
    );
    assert!(locker.to_string().contains("in Chromium"), "{locker}");
    assert_eq!(trap["verdict"], "scam", "{trap}");
    has_all(
        trap,
        &[
            "beforeunload_trap",
            "cursor_hidden",
            "audio_loop",
            "victim_claim",
        ],
    );
    // The game's fullscreen waits for its button, which the scan does not press.
    assert_eq!(game["verdict"], "clean", "{game}");
    assert!(
        !codes(game).contains(&"fullscreen_auto".to_string()),
        "{game}"
    );
    // Every page was fetched through the scanner again for the browser.
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= before + 6);
}

#[test]
fn dynamic_analysis_keeps_the_browser_off_private_addresses() {
    let (base, hits) = serve_counting(vec![(
        "/kit.js",
        "document.onclick=function(){document.documentElement.requestFullscreen()};\
         for(var i=0;i<9;i++)alert('Virus')"
            .to_string(),
    )]);
    let dir = std::env::temp_dir().join(format!("callopt-beacon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("beacon.html");
    let html = std::fs::read_to_string(dynamic_page("beacon.html")).unwrap();
    std::fs::write(&page, html.replace("__ORIGIN__", &base)).unwrap();

    let run = scan(&["--dynamic", page.to_str().unwrap()]);
    let out = stdout(&run);
    assert_eq!(run.status.code(), Some(0), "{out}");
    assert!(out.contains("request refused: http://127.0.0.1"), "{out}");
    // Not the script, not the image, not the fetch: the server saw nothing.
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every corpus page, scam and legitimate, `times` over: a few hundred inputs.
fn corpus_pages(times: usize) -> (Vec<String>, usize) {
    let mut pages = Vec::new();
    let mut scams = 0;
    for label in ["scam", "legit"] {
        let mut files: Vec<String> = std::fs::read_dir(corpus(label))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "html"))
            .map(|p| p.to_str().unwrap().to_string())
            .collect();
        files.sort();
        if label == "scam" {
            scams = files.len() * times;
        }
        for _ in 0..times {
            pages.extend(files.iter().cloned());
        }
    }
    (pages, scams)
}

#[test]
fn a_few_hundred_pages_end_with_a_summary_and_show_progress_on_a_terminal() {
    let (pages, scams) = corpus_pages(2);
    assert!(pages.len() >= 300, "{}", pages.len());
    let args: Vec<&str> = pages.iter().map(String::as_str).collect();
    let o = scan(&args);
    let out = stdout(&o);
    let summary = out.lines().last().unwrap();
    let counts: Vec<usize> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    // "N scanned: S scam, R review, C clean, F failed"
    assert_eq!(counts.len(), 5, "{summary}");
    assert_eq!(counts[0], pages.len(), "{summary}");
    assert_eq!(counts[1] + counts[2] + counts[3], pages.len(), "{summary}");
    assert_eq!(counts[4], 0, "{summary}");
    assert!(counts[1] * 100 >= scams * 95, "{summary}");
    assert_eq!(
        out.lines().count(),
        pages.len() + 1 + count_finding_lines(&out)
    );
    assert_eq!(o.status.code(), Some(1));

    // On a terminal the same run draws a progress bar (util-linux `script` gives it one).
    let mut command = format!("{BIN} scan");
    for p in &pages[..120] {
        command.push(' ');
        command.push_str(p);
    }
    let tty = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("run under script");
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(shown.contains("/120 pages"), "{shown}");
    assert!(shown.contains("120 scanned:"), "{shown}");
}

/// Lines of a human-readable run that are not a page's verdict line: findings and notes.
fn count_finding_lines(out: &str) -> usize {
    out.lines().filter(|l| l.starts_with("  ")).count()
}
