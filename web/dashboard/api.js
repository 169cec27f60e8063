// The dashboard's access to Callopt's API: the API key the user signed in with (kept in
// sessionStorage, sent only as an Authorization header), JSON requests with problem+json
// errors, and the live calls stream read with fetch() (EventSource cannot send the header).

const KEY = "callopt.apiKey";

/** The API key of this tab, or null when signed out. */
export const apiKey = () => sessionStorage.getItem(KEY);

export function signIn(key) {
  sessionStorage.setItem(KEY, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** An API error: the problem+json `detail` (or the status) as message, with the status. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Called when the API refuses the key (401), so the app can return to sign-in. */
let onUnauthorised = () => {};
export function whenUnauthorised(fn) {
  onUnauthorised = fn;
}

function url(path, params) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
  }
  return u;
}

async function problem(res) {
  let detail = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    detail = body.detail || body.title || detail;
  } catch {
    // Not problem+json: keep the status line.
  }
  return new ApiError(res.status, detail);
}

/** GET `path` with query `params`, as JSON. Throws ApiError. */
export async function get(path, params, { signal, key = apiKey() } = {}) {
  const res = await fetch(url(path, params), {
    headers: { authorization: `Bearer ${key}`, accept: "application/json" },
    signal,
    cache: "no-store",
  });
  if (!res.ok) {
    const e = await problem(res);
    if (res.status === 401 && key === apiKey()) onUnauthorised();
    throw e;
  }
  return res.json();
}

/**
 * Downloads `path` with query `params` as a file named `filename` (the key goes in a header,
 * so a plain link cannot do it). Throws ApiError.
 */
export async function download(path, params, filename) {
  const res = await fetch(url(path, params), {
    headers: { authorization: `Bearer ${apiKey()}` },
    cache: "no-store",
  });
  if (!res.ok) throw await problem(res);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await res.blob());
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

/** Checks a key before keeping it: a cheap authenticated request. */
export async function checkKey(key) {
  await get("/v1/campaigns", { limit: 1 }, { key });
}

/**
 * Parses Server-Sent Events from a byte stream reader, calling `onEvent(name, data)` for each
 * event with data. Resolves when the stream ends.
 */
export async function readEvents(reader, onEvent) {
  const decoder = new TextDecoder();
  let buffer = "";
  let name = "message";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        if (data.length) onEvent(name, data.join("\n"));
        name = "message";
        data = [];
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let v = colon < 0 ? "" : line.slice(colon + 1);
        if (v.startsWith(" ")) v = v.slice(1);
        if (field === "event") name = v;
        else if (field === "data") data.push(v);
      }
    }
  }
}

/**
 * Follows `/v1/calls/live`: `onSnapshot({in_progress, recent})` on every (re)connection, then
 * `onCall(call)` for every change; `onStatus("live" | "reconnecting" | "error")`. Reconnects
 * with backoff (1 s doubling to 30 s) when the stream ends or fails. Returns a function that
 * stops it.
 */
export function followLive({ onSnapshot, onCall, onStatus }) {
  const stop = new AbortController();
  let backoff = 1000;
  (async () => {
    while (!stop.signal.aborted) {
      try {
        const res = await fetch("/v1/calls/live", {
          headers: { authorization: `Bearer ${apiKey()}`, accept: "text/event-stream" },
          signal: stop.signal,
          cache: "no-store",
        });
        if (!res.ok) {
          const e = await problem(res);
          if (res.status === 401) {
            onUnauthorised();
            return;
          }
          throw e;
        }
        await readEvents(res.body.getReader(), (name, data) => {
          if (name === "snapshot") {
            backoff = 1000;
            onStatus("live");
            onSnapshot(JSON.parse(data));
          } else if (name === "call") {
            onCall(JSON.parse(data));
          }
          // `lagged`: the server ends the stream next; the loop re-opens it.
        });
      } catch (e) {
        if (stop.signal.aborted) return;
        onStatus("error", e.message);
      }
      if (stop.signal.aborted) return;
      onStatus("reconnecting");
      await new Promise((resolve) => {
        const t = setTimeout(resolve, backoff);
        stop.signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
      });
      backoff = Math.min(backoff * 2, 30_000);
    }
  })();
  return () => stop.abort();
}
