//! Dynamic analysis: loads a page in headless Chromium with a recorder injected before the
//! page's own scripts, clicks and presses keys as a visitor would, and reports the
//! browser-locking calls the page made, for pages whose code static analysis cannot read.
//!
//! Chromium never reaches the network itself. Every request it makes is paused (CDP `Fetch`),
//! checked with [`callopt_egress::check_url`] and fetched by the scanner's own client, whose
//! resolver keeps only public addresses unless `allow_private`; the answer is handed back to the
//! browser. Anything that escapes interception meets a proxy that does not exist and a host
//! resolver that resolves nothing, so the browser fails closed.

use crate::fetch::{Limits, USER_AGENTS};
use crate::js::Behaviour;
use crate::{analyze, merge, score, Finding, Report};
use base64::Engine;
use chromiumoxide::cdp::browser_protocol::fetch::{
    self as cdp_fetch, EventRequestPaused, FailRequestParams, FulfillRequestParams, HeaderEntry,
};
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchKeyEventParams, DispatchKeyEventType, DispatchMouseEventParams, DispatchMouseEventType,
    MouseButton,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, SetUserAgentOverrideParams};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, CloseParams, DialogType, EventJavascriptDialogOpening,
    EventLoadEventFired, HandleJavaScriptDialogParams, NavigateParams,
};
use chromiumoxide::cdp::js_protocol::runtime::{AddBindingParams, EventBindingCalled};
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::StreamExt;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The recorder, with its binding and probe names still to fill in.
const RECORDER: &str = include_str!("recorder.js");
/// Most requests one page may make through the scanner.
const MAX_REQUESTS: usize = 64;
/// Most bytes one page may receive through the scanner, all requests together.
const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Time the page runs on its own after loading, before the visitor acts.
const SETTLE: Duration = Duration::from_millis(1500);
/// Time given to what a click or a key sets off.
const REACT: Duration = Duration::from_millis(700);
/// Recorder reports kept per page.
const MAX_RECORDS: usize = 2000;

/// Why dynamic analysis could not run.
#[derive(Debug, thiserror::Error)]
pub enum DynamicError {
    /// Chromium could not be started.
    #[error("could not start Chromium ({0}); install it (Debian: `apt-get install chromium`) or name it with --chromium")]
    Launch(String),
    /// The browser failed while the page was loaded.
    #[error("the browser failed: {0}")]
    Browser(String),
    /// The page's URL may not be opened.
    #[error("refused {url}: {reason}")]
    Refused {
        /// The URL refused.
        url: String,
        /// Why.
        reason: callopt_egress::DestinationError,
    },
    /// The page took longer than its time.
    #[error("no result within {0:?}")]
    Timeout(Duration),
}

fn browser_error(e: impl std::fmt::Display) -> DynamicError {
    DynamicError::Browser(e.to_string())
}

/// One headless Chromium, reused for every page of a run; each page gets a tab of its own.
pub struct Chromium {
    /// The browser.
    browser: Browser,
    /// Drives the browser's connection; ends when the browser does.
    handler: tokio::task::JoinHandle<()>,
    /// The browser's profile, removed when it closes or is dropped (held only for that).
    _profile: Profile,
    /// The client every page request goes through (public addresses only, unless allowed).
    client: reqwest::Client,
    /// Bounds on time and size, and whether private addresses may be reached.
    limits: Limits,
}

impl Chromium {
    /// Starts Chromium (`executable`, else the one found on the `PATH`) headless, with no
    /// network of its own.
    pub async fn launch(
        executable: Option<PathBuf>,
        limits: &Limits,
    ) -> Result<Self, DynamicError> {
        let root = std::env::temp_dir();
        sweep_profiles(&root);
        let profile = root.join(format!(
            "{PROFILE_PREFIX}{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        let mut config = BrowserConfig::builder()
            .no_sandbox()
            .user_data_dir(&profile)
            .window_size(1366, 768)
            .viewport(None)
            .launch_timeout(Duration::from_secs(20))
            .request_timeout(limits.timeout)
            .args([
                // No way out but the scanner's: a proxy nobody listens on, for every host
                // (loopback included), and names that never resolve.
                "--proxy-server=127.0.0.1:9",
                "--proxy-bypass-list=<-loopback>",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
                "--disable-quic",
                "--disable-gpu",
                "--no-first-run",
                "--disable-sync",
                "--disable-component-update",
                "--mute-audio",
            ]);
        if let Some(path) = executable {
            config = config.chrome_executable(path);
        }
        let config = config.build().map_err(DynamicError::Launch)?;
        let (browser, mut events) = Browser::launch(config)
            .await
            .map_err(|e| DynamicError::Launch(e.to_string()))?;
        let handler = tokio::spawn(async move { while events.next().await.is_some() {} });
        Ok(Chromium {
            browser,
            handler,
            _profile: Profile(profile),
            client: crate::fetch::client(limits),
            limits: limits.clone(),
        })
    }

    /// Loads `url` (http, https, or a `file:` URL of a saved page) and watches it.
    pub async fn observe(&self, url: &str) -> Result<Observation, DynamicError> {
        if !url.starts_with("file:") {
            callopt_egress::check_url(url, self.limits.allow_private).map_err(|reason| {
                DynamicError::Refused {
                    url: url.to_string(),
                    reason,
                }
            })?;
        }
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .map_err(browser_error)?;
        let bound = self.limits.timeout + SETTLE + REACT * 3 + Duration::from_secs(5);
        let watched = tokio::time::timeout(bound, self.watch(&page, url)).await;
        // Closing runs the page's beforeunload handlers, which `watch` already had its look at.
        let _ = tokio::time::timeout(Duration::from_secs(2), page.clone().close()).await;
        watched.unwrap_or(Err(DynamicError::Timeout(bound)))
    }

    /// The scan of one tab: intercept, record, load, act, probe, leave.
    async fn watch(&self, page: &Page, url: &str) -> Result<Observation, DynamicError> {
        let token = token();
        let binding = format!("__callopt_{token}");
        let probe = format!("__callopt_probe_{token}");
        let seen = Arc::new(Seen::default());
        // A saved page may read the files beside it, and nothing else on this machine.
        let local = url
            .strip_prefix("file://")
            .and_then(|path| path.rsplit_once('/'))
            .map(|(dir, _)| format!("file://{dir}/"));
        self.intercept(page, &seen, local).await?;
        let mut bindings = page
            .event_listener::<EventBindingCalled>()
            .await
            .map_err(browser_error)?;
        let recorded = seen.clone();
        let name = binding.clone();
        let reader = tokio::spawn(async move {
            while let Some(call) = bindings.next().await {
                if call.name != name {
                    continue;
                }
                if let Ok(record) = serde_json::from_str::<Record>(&call.payload) {
                    let mut records = recorded.records.lock().expect("lock");
                    if records.len() < MAX_RECORDS {
                        records.push(record);
                    }
                }
            }
        });
        let dialogs = self.answer_dialogs(page, &seen).await?;
        page.execute(AddBindingParams::new(binding.clone()))
            .await
            .map_err(browser_error)?;
        let script = RECORDER
            .replace("__BINDING__", &binding)
            .replace("__PROBE__", &probe);
        page.execute(AddScriptToEvaluateOnNewDocumentParams::new(script))
            .await
            .map_err(browser_error)?;
        page.execute(SetUserAgentOverrideParams::new(USER_AGENTS[0].1))
            .await
            .map_err(browser_error)?;
        let mut loaded = page
            .event_listener::<EventLoadEventFired>()
            .await
            .map_err(browser_error)?;
        page.execute(NavigateParams::new(url))
            .await
            .map_err(browser_error)?;
        let mut notes = Vec::new();
        if tokio::time::timeout(self.limits.timeout, loaded.next())
            .await
            .is_err()
        {
            notes.push(format!(
                "the page did not finish loading within {:?}",
                self.limits.timeout
            ));
        }
        tokio::time::sleep(SETTLE).await;
        self.act(page, &probe).await;
        let mut probed = self.probe(page, &probe).await;
        if probed.is_none() {
            notes.push(
                "the page did not answer the final probe (a script that never yields?)".into(),
            );
        }
        if probed
            .as_ref()
            .is_some_and(|p| !p.url.starts_with("http") && !p.url.starts_with("file:"))
        {
            // The browser's own error page: nothing of the page to read.
            notes.push("the page did not load in Chromium".into());
            probed = None;
        }
        // Leaving: a beforeunload trap shows its dialog now.
        let _ = tokio::time::timeout(REACT, page.execute(CloseParams::default())).await;
        tokio::time::sleep(REACT).await;
        reader.abort();
        dialogs.abort();
        let records = std::mem::take(&mut *seen.records.lock().expect("lock"));
        let mut blocked = std::mem::take(&mut *seen.blocked.lock().expect("lock"));
        blocked.truncate(5);
        notes.extend(blocked.into_iter().map(|u| format!("request refused: {u}")));
        Ok(Observation {
            hits: behaviours(
                &records,
                probed.as_ref(),
                seen.native_dialogs.load(Ordering::Relaxed),
                seen.unload_trap.load(Ordering::Relaxed) > 0,
            ),
            html: probed.map(|p| p.html),
            requests: seen.requests.load(Ordering::Relaxed),
            notes,
        })
    }

    /// Pauses every request of the tab and answers it through the scanner's client.
    async fn intercept(
        &self,
        page: &Page,
        seen: &Arc<Seen>,
        local: Option<String>,
    ) -> Result<(), DynamicError> {
        let mut paused = page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(browser_error)?;
        let (page2, seen, client, limits) = (
            page.clone(),
            seen.clone(),
            self.client.clone(),
            self.limits.clone(),
        );
        tokio::spawn(async move {
            while let Some(event) = paused.next().await {
                let (page, seen, client, limits) =
                    (page2.clone(), seen.clone(), client.clone(), limits.clone());
                let local = local.clone();
                tokio::spawn(async move {
                    let url = &event.request.url;
                    let beside = local.as_ref().is_some_and(|dir| {
                        url.starts_with(dir.as_str()) && !url[dir.len()..].contains("..")
                    });
                    if beside {
                        let go_on = cdp_fetch::ContinueRequestParams::new(event.request_id.clone());
                        let _ = page.execute(go_on).await;
                        return;
                    }
                    let answer = pass_on(&client, &limits, &seen, &event).await;
                    let _ = match answer {
                        Some(fulfill) => page.execute(fulfill).await.map(|_| ()),
                        None => page
                            .execute(FailRequestParams::new(
                                event.request_id.clone(),
                                ErrorReason::BlockedByClient,
                            ))
                            .await
                            .map(|_| ()),
                    };
                });
            }
        });
        page.execute(cdp_fetch::EnableParams::default())
            .await
            .map_err(browser_error)?;
        Ok(())
    }

    /// Answers the page's native dialogs at once, counting them; a beforeunload one is a trap.
    async fn answer_dialogs(
        &self,
        page: &Page,
        seen: &Arc<Seen>,
    ) -> Result<tokio::task::JoinHandle<()>, DynamicError> {
        let mut opening = page
            .event_listener::<EventJavascriptDialogOpening>()
            .await
            .map_err(browser_error)?;
        let (page, seen) = (page.clone(), seen.clone());
        Ok(tokio::spawn(async move {
            while let Some(dialog) = opening.next().await {
                if dialog.r#type == DialogType::Beforeunload {
                    seen.unload_trap.fetch_add(1, Ordering::Relaxed);
                } else {
                    seen.native_dialogs.fetch_add(1, Ordering::Relaxed);
                }
                let _ = page.execute(HandleJavaScriptDialogParams::new(true)).await;
            }
        }))
    }

    /// What a visitor does: a click on the page itself (not a control), then Escape, F11 and
    /// F12, then a right click.
    async fn act(&self, page: &Page, probe: &str) {
        let blank = tokio::time::timeout(
            REACT,
            page.evaluate(format!("globalThis[{:?}]()", format!("{probe}_blank"))),
        )
        .await
        .ok()
        .and_then(|r| r.ok())
        .and_then(|r| r.into_value::<String>().ok())
        .and_then(|s| serde_json::from_str::<(f64, f64)>(&s).ok())
        .unwrap_or((2.0, 2.0));
        click(page, blank, MouseButton::Left).await;
        tokio::time::sleep(REACT).await;
        for (key, code) in [("Escape", 27), ("F11", 122), ("F12", 123)] {
            press(page, key, code).await;
        }
        click(page, blank, MouseButton::Right).await;
        tokio::time::sleep(REACT).await;
    }

    /// The page's state at the end: its DOM as rendered, the cursor, the console.
    async fn probe(&self, page: &Page, probe: &str) -> Option<Probe> {
        let answer = tokio::time::timeout(
            Duration::from_secs(3),
            page.evaluate(format!("globalThis[{probe:?}]()")),
        )
        .await
        .ok()?
        .ok()?;
        serde_json::from_str(&answer.into_value::<String>().ok()?).ok()
    }

    /// Ends the browser and removes its profile.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.browser.close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.browser.wait()).await;
        self.handler.abort();
    }
}

/// A browser profile's directory, removed when dropped: after the browser, which is declared
/// before it in [`Chromium`] and so is killed first when a service drops it without
/// [`Chromium::close`].
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a browser profile's directory name starts; the owning process id follows.
const PROFILE_PREFIX: &str = "callopt-scan-";

/// Removes the profiles under `root` left by processes that no longer run (killed before they
/// could remove their own): each is megabytes, and a service restarted often would otherwise
/// fill the disk. A profile whose owner still runs, or whose owner cannot be told, is kept.
fn sweep_profiles(root: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let proc = std::path::Path::new("/proc/self");
    if !proc.exists() {
        return; // no way to tell a live process from a dead one here
    }
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PROFILE_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            kill_browsers_of(&entry.path());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Kills the browser processes still running on `profile`: a scanner killed outright (`kill
/// -9`, a crash) leaves its Chromium behind, with nobody left to close it.
fn kill_browsers_of(profile: &std::path::Path) {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    let flag = format!("--user-data-dir={}", profile.display());
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|arg| arg == flag.as_bytes()) {
            // SAFETY: kill(2) takes plain integers and touches no memory of this process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Dispatches a trusted press and release of `button` at `(x, y)`.
async fn click(page: &Page, (x, y): (f64, f64), button: MouseButton) {
    for kind in [
        DispatchMouseEventType::MousePressed,
        DispatchMouseEventType::MouseReleased,
    ] {
        if let Ok(event) = DispatchMouseEventParams::builder()
            .r#type(kind)
            .x(x)
            .y(y)
            .button(button.clone())
            .click_count(1)
            .build()
        {
            let _ = tokio::time::timeout(REACT, page.execute(event)).await;
        }
    }
}

/// Dispatches a trusted key press.
async fn press(page: &Page, key: &str, code: i64) {
    for kind in [
        DispatchKeyEventType::RawKeyDown,
        DispatchKeyEventType::KeyUp,
    ] {
        if let Ok(event) = DispatchKeyEventParams::builder()
            .r#type(kind)
            .key(key)
            .code(key)
            .windows_virtual_key_code(code)
            .native_virtual_key_code(code)
            .build()
        {
            let _ = tokio::time::timeout(REACT, page.execute(event)).await;
        }
    }
}

/// Fetches a paused request with the scanner's client: the answer for the browser, or `None`
/// to refuse it (an address the scanner may not reach, over budget, or a failed fetch).
async fn pass_on(
    client: &reqwest::Client,
    limits: &Limits,
    seen: &Seen,
    event: &EventRequestPaused,
) -> Option<FulfillRequestParams> {
    let request = &event.request;
    if seen.requests.fetch_add(1, Ordering::Relaxed) >= MAX_REQUESTS {
        return None;
    }
    let url = match callopt_egress::check_url(&request.url, limits.allow_private) {
        Ok(url) => url,
        Err(_) => {
            seen.blocked.lock().expect("lock").push(request.url.clone());
            return None;
        }
    };
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).ok()?;
    let mut outgoing = client.request(method, url).timeout(limits.timeout);
    if let Some(headers) = request.headers.inner().as_object() {
        for (name, value) in headers {
            let skip = ["host", "content-length", "connection", "accept-encoding"];
            if let (false, Some(value)) = (
                skip.contains(&name.to_ascii_lowercase().as_str()),
                value.as_str(),
            ) {
                outgoing = outgoing.header(name.as_str(), value);
            }
        }
    }
    let body: Vec<u8> = request
        .post_data_entries
        .iter()
        .flatten()
        .filter_map(|e| e.bytes.as_ref())
        .filter_map(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(AsRef::<str>::as_ref(b))
                .ok()
        })
        .flatten()
        .collect();
    if !body.is_empty() {
        outgoing = outgoing.body(body);
    }
    let mut response = outgoing.send().await.ok()?;
    let status = i64::from(response.status().as_u16());
    let headers: Vec<HeaderEntry> = response
        .headers()
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "content-length" | "transfer-encoding" | "content-encoding" | "connection"
            )
        })
        .filter_map(|(name, value)| Some(HeaderEntry::new(name.as_str(), value.to_str().ok()?)))
        .collect();
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limits
            .max_body
            .min(MAX_BYTES.saturating_sub(seen.bytes.load(Ordering::Relaxed)))
            .saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() > room {
            break;
        }
    }
    seen.bytes.fetch_add(body.len(), Ordering::Relaxed);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
    FulfillRequestParams::builder()
        .request_id(event.request_id.clone())
        .response_code(status)
        .response_headers(headers)
        .body(encoded)
        .build()
        .ok()
}

/// What one tab saw, shared by its tasks.
#[derive(Default)]
struct Seen {
    /// The recorder's reports.
    records: Mutex<Vec<Record>>,
    /// Requests the page made (answered or refused).
    requests: AtomicUsize,
    /// Bytes handed to the page.
    bytes: AtomicUsize,
    /// URLs refused by the address rule.
    blocked: Mutex<Vec<String>>,
    /// Native dialogs the page opened past the recorder (another frame's `alert`, say).
    native_dialogs: AtomicUsize,
    /// beforeunload dialogs shown when the tab was closed.
    unload_trap: AtomicUsize,
}

/// One report of the recorder (`recorder.js`).
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// Which API: `fullscreen`, `dialog`, `key_blocked`...
    pub api: String,
    /// How many times this API was called so far in the frame.
    pub n: u32,
    /// Whether the browser saw a user activation at the call.
    #[serde(default)]
    pub gesture: bool,
    /// What the visitor's last input (within 1.5 s) landed on: `page` or `control`.
    pub on: Option<String>,
    /// Milliseconds since the frame started.
    pub ms: u64,
    /// The key blocked, or the call's first string argument.
    pub extra: Option<String>,
}

/// The page's state at the end of the scan.
#[derive(Debug, Clone, Deserialize)]
pub struct Probe {
    /// The document's URL (the browser's error page has one of its own).
    pub url: String,
    /// The DOM as rendered (what scripts wrote included), at most 2 MiB.
    pub html: String,
    /// The cursor is `none` on the page.
    pub cursor_hidden: bool,
    /// A `console` method is no longer the browser's own.
    pub console_replaced: bool,
}

/// What dynamic analysis found on one page.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Behaviours with when they were seen.
    pub hits: Vec<(Behaviour, String)>,
    /// The DOM as rendered, for the static reading of what scripts wrote.
    pub html: Option<String>,
    /// Requests the page made through the scanner.
    pub requests: usize,
    /// What kept part of the page from being seen.
    pub notes: Vec<String>,
}

/// The behaviours in what the recorder reported.
pub fn behaviours(
    records: &[Record],
    probe: Option<&Probe>,
    native_dialogs: usize,
    unload_trap: bool,
) -> Vec<(Behaviour, String)> {
    let mut hits: Vec<(Behaviour, String)> = Vec::new();
    let mut add = |b: Behaviour, when: String| {
        if !hits.iter().any(|(h, _)| *h == b) {
            hits.push((b, when));
        }
    };
    let most = |api: &str| {
        records
            .iter()
            .filter(|r| r.api == api)
            .map(|r| r.n)
            .max()
            .unwrap_or(0)
    };
    let locks = [
        (
            "fullscreen",
            Behaviour::FullscreenAuto,
            Behaviour::FullscreenOnControl,
        ),
        (
            "keyboard_lock",
            Behaviour::KeyboardLockAuto,
            Behaviour::KeyboardLockOnControl,
        ),
        (
            "pointer_lock",
            Behaviour::PointerLockAuto,
            Behaviour::PointerLockOnControl,
        ),
    ];
    for (api, auto, on_control) in locks {
        let calls: Vec<&Record> = records.iter().filter(|r| r.api == api).collect();
        let unasked = calls.iter().find(|r| r.on.as_deref() != Some("control"));
        if let Some(r) = unasked {
            let when = match r.on.as_deref() {
                Some(_) => "after a click on the page itself".to_string(),
                None => format!("{} ms after load, with no input", r.ms),
            };
            add(auto, when);
        } else if calls.len() >= 3 {
            add(auto, format!("called {} times", calls.len()));
        } else if !calls.is_empty() {
            add(on_control, "after a click on a control".into());
        }
    }
    let dialogs = most("dialog") as usize + native_dialogs;
    if dialogs >= 3 {
        add(Behaviour::DialogLoop, format!("{dialogs} dialogs"));
    }
    let counted = [
        (
            "window_open",
            3,
            Behaviour::WindowOpenLoop,
            "windows opened",
        ),
        ("print", 2, Behaviour::PrintLoop, "print dialogs"),
        (
            "push_state",
            10,
            Behaviour::HistoryFlood,
            "history entries pushed",
        ),
        ("download", 3, Behaviour::DownloadLoop, "downloads started"),
        (
            "console_clear",
            3,
            Behaviour::ConsoleTampering,
            "console clears",
        ),
        ("media_play", 3, Behaviour::AudioLoop, "plays started"),
    ];
    for (api, at_least, behaviour, what) in counted {
        let n = most(api);
        if n >= at_least {
            add(behaviour, format!("{n} {what}"));
        }
    }
    if most("media_loop") > 0 {
        add(Behaviour::AudioLoop, "played media set to loop".into());
    }
    for r in records.iter().filter(|r| r.api == "key_blocked") {
        match r.extra.as_deref() {
            Some("Escape" | "F11") => add(
                Behaviour::EscapeBlocked,
                format!("cancelled the {} key", r.extra.as_deref().unwrap_or("")),
            ),
            Some("F12") => add(Behaviour::DevtoolsKeysBlocked, "cancelled F12".into()),
            _ => {}
        }
    }
    if most("contextmenu_blocked") > 0 {
        add(
            Behaviour::ContextMenuBlocked,
            "cancelled a right click".into(),
        );
    }
    if let Some(p) = probe {
        if p.cursor_hidden {
            add(Behaviour::CursorHidden, "at the end of the visit".into());
        }
        if p.console_replaced {
            add(
                Behaviour::ConsoleTampering,
                "replaced console methods".into(),
            );
        }
    }
    if unload_trap {
        add(
            Behaviour::BeforeUnloadTrap,
            "asked to stay when the tab was closed".into(),
        );
    }
    hits
}

/// The static report completed with what the browser saw: the rendered DOM read as a page,
/// and each behaviour observed, then decided again.
pub fn combine(mut report: Report, observation: &Observation) -> Report {
    let mut findings = std::mem::take(&mut report.findings);
    if let Some(html) = &observation.html {
        let rendered = analyze(&report.input, html, &[]);
        findings.extend(rendered.findings.into_iter().map(|mut f| {
            f.location = format!("rendered page: {}", f.location);
            f
        }));
    }
    for (behaviour, when) in &observation.hits {
        let (code, kind, weight, detail) = score::describe(*behaviour);
        findings.push(Finding {
            code,
            kind,
            weight,
            location: format!("in Chromium, {when}"),
            detail: detail.to_string(),
        });
    }
    report.findings = merge(findings);
    report.decision = score::decide(&report.findings);
    report.notes.push(format!(
        "run in Chromium: {} behaviours seen, {} requests",
        observation.hits.len(),
        observation.requests
    ));
    report.notes.extend(observation.notes.iter().cloned());
    report
}

/// A name no page can know in advance.
fn token() -> String {
    let mut bytes = [0u8; 12];
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // Not a secret: only unguessable to a page written before the scan ran.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let mut x = seed as u64
        ^ (std::process::id() as u64).rotate_left(32)
        ^ call.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ 0x2545_F491_4F6C_DD1D;
    for b in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_of_dead_processes_are_swept_and_live_ones_kept() {
        let root = std::env::temp_dir().join(format!("callopt-sweep-test-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        // A process that is not running: no process id reaches the kernel's `pid_max`, so this
        // one names none, whatever else the machine runs.
        let dead: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let dead_profile = root.join(format!("{PROFILE_PREFIX}{dead}-123"));
        let own = root.join(format!("{PROFILE_PREFIX}{}-456", std::process::id()));
        let other = root.join("callopt-scan-notapid-1");
        for dir in [&dead_profile, &own, &other] {
            std::fs::create_dir_all(dir.join("Default")).unwrap();
        }
        // A browser the dead process left running on its profile, and one on this process's.
        // `spawn` returns once the child's exec has begun, but its arguments show in
        // `/proc/<pid>/cmdline` only once the exec has finished; a browser the sweep is meant to
        // find has been running for a long time, so wait for that here.
        let browser = |profile: &std::path::Path| {
            let flag = format!("--user-data-dir={}", profile.display());
            let child = std::process::Command::new("sh")
                .args(["-c", "sleep 30; true"])
                .arg(&flag)
                .spawn()
                .unwrap();
            let cmdline = format!("/proc/{}/cmdline", child.id());
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !std::fs::read(&cmdline)
                .unwrap_or_default()
                .split(|b| *b == 0)
                .any(|arg| arg == flag.as_bytes())
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the browser shows its arguments"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            child
        };
        let (mut orphan, mut live) = (browser(&dead_profile), browser(&own));
        sweep_profiles(&root);
        let killed = orphan.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&killed),
            Some(libc::SIGKILL),
            "the dead process's browser is killed"
        );
        assert!(
            live.try_wait().unwrap().is_none(),
            "this process's browser is left running"
        );
        live.kill().unwrap();
        live.wait().unwrap();
        assert!(
            !dead_profile.exists(),
            "a dead process's profile is removed"
        );
        assert!(own.exists(), "this process's own profile is kept");
        assert!(other.exists(), "a name that does not parse is left alone");
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn record(api: &str, n: u32, on: Option<&str>, extra: Option<&str>) -> Record {
        Record {
            api: api.into(),
            n,
            gesture: on.is_some(),
            on: on.map(Into::into),
            ms: 10,
            extra: extra.map(Into::into),
        }
    }

    fn found(records: &[Record]) -> Vec<Behaviour> {
        behaviours(records, None, 0, false)
            .into_iter()
            .map(|(b, _)| b)
            .collect()
    }

    #[test]
    fn fullscreen_depends_on_what_asked_for_it() {
        let cases: &[(&[Record], &[Behaviour])] = &[
            (
                &[record("fullscreen", 1, None, None)],
                &[Behaviour::FullscreenAuto],
            ),
            (
                &[record("fullscreen", 1, Some("page"), None)],
                &[Behaviour::FullscreenAuto],
            ),
            (
                &[record("fullscreen", 1, Some("control"), None)],
                &[Behaviour::FullscreenOnControl],
            ),
            (
                &[
                    record("fullscreen", 1, Some("control"), None),
                    record("fullscreen", 2, Some("control"), None),
                    record("fullscreen", 3, Some("control"), None),
                ],
                &[Behaviour::FullscreenAuto],
            ),
            (
                &[record("keyboard_lock", 1, None, None)],
                &[Behaviour::KeyboardLockAuto],
            ),
            (
                &[record("pointer_lock", 1, Some("control"), None)],
                &[Behaviour::PointerLockOnControl],
            ),
        ];
        for (records, want) in cases {
            assert_eq!(&found(records), want, "{records:?}");
        }
    }

    #[test]
    fn counts_make_loops_and_a_few_calls_do_not() {
        assert_eq!(found(&[record("dialog", 2, None, None)]), vec![]);
        assert_eq!(
            found(&[record("dialog", 3, None, None)]),
            vec![Behaviour::DialogLoop]
        );
        assert_eq!(found(&[record("push_state", 9, None, None)]), vec![]);
        assert_eq!(
            found(&[record("push_state", 10, None, None)]),
            vec![Behaviour::HistoryFlood]
        );
        assert_eq!(found(&[record("window_open", 2, None, None)]), vec![]);
        assert_eq!(
            found(&[record("print", 2, None, None)]),
            vec![Behaviour::PrintLoop]
        );
        // Dialogs shown natively (past the recorder) count with the recorded ones.
        let hits: Vec<Behaviour> = behaviours(&[record("dialog", 1, None, None)], None, 2, false)
            .into_iter()
            .map(|(b, _)| b)
            .collect();
        assert_eq!(hits, vec![Behaviour::DialogLoop]);
    }

    #[test]
    fn keys_the_page_cancelled() {
        assert_eq!(
            found(&[record("key_blocked", 1, Some("page"), Some("Escape"))]),
            vec![Behaviour::EscapeBlocked]
        );
        assert_eq!(
            found(&[record("key_blocked", 1, Some("page"), Some("F12"))]),
            vec![Behaviour::DevtoolsKeysBlocked]
        );
        assert_eq!(
            found(&[record("key_blocked", 1, Some("page"), Some("a"))]),
            vec![]
        );
    }

    #[test]
    fn the_probe_and_the_unload_trap() {
        let probe = Probe {
            url: "https://example.com/".into(),
            html: String::new(),
            cursor_hidden: true,
            console_replaced: true,
        };
        let hits: Vec<Behaviour> = behaviours(&[], Some(&probe), 0, true)
            .into_iter()
            .map(|(b, _)| b)
            .collect();
        assert_eq!(
            hits,
            vec![
                Behaviour::CursorHidden,
                Behaviour::ConsoleTampering,
                Behaviour::BeforeUnloadTrap
            ]
        );
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(token(), token());
        assert_eq!(token().len(), 24);
    }
}
