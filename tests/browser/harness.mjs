// Harness for the browser tests: starts the real callopt binary on a fresh database, a page
// server on a verified origin, sets up a campaign through the management API, and opens
// Debian's Chromium. Nothing is mocked here.
import { spawn, execFile } from "node:child_process";
import crypto from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "../..");
export const ARTIFACTS = path.join(HERE, "artifacts");

/** The campaign's default number, printed on every test page. */
export const DEFAULT_NUMBER = "+14155550100";
export const DEFAULT_DISPLAY = "(415) 555-0100";
/** The pool: a block of 20 numbers right after the default number. */
export const POOL = Array.from({ length: 20 }, (_, i) => "+1" + (4155550101 + i));

export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** Per-test time limit for `test(name, TEST, fn)`: a hang fails the test instead of CI. */
export const TEST = { timeout: 30_000 };
/** Time limit of the `before` hooks (starting the service and Chromium). */
export const SETUP = { timeout: 60_000 };
/** Default time limit of every Playwright wait, well inside the test's own limit. */
export const WAIT_MS = 10_000;

/** A new browser context whose waits fail after WAIT_MS with Playwright's own message. */
export async function newContext(browser, options) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(WAIT_MS);
  return context;
}

/** `promise`, or a rejection naming `what` if it has not settled within `ms`. */
export async function within(promise, what, ms = WAIT_MS) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Page-side counters of the tag's requests for a number: `window.__calloptAsked` (fetch
 * called; the tag calls it synchronously, so this is exact as soon as the tag's code has run)
 * and `window.__calloptHandled`, the answers it has finished handling, for asserting that a
 * page is *unchanged* without sleeping. Runs before the page's scripts (an init script) and wraps
 * window.fetch for the tag's requests for a number. An answer counts as handled one task after
 * (a) the request failed, or (b) the tag's read of the body settled, or (c) the answer came and
 * the tag did not start reading its body (it does not read non-2xx answers). After each of
 * those the tag has only promise reactions (microtasks) left, which all run before that task.
 * The task is a MessageChannel message, not setTimeout: it also works under `context.clock`.
 */
function countHandledAnswers() {
  const fetch0 = window.fetch;
  const channel = new MessageChannel();
  const tasks = [];
  channel.port1.onmessage = () => tasks.shift()();
  const later = (fn) => { tasks.push(fn); channel.port2.postMessage(0); };
  let asked = 0, handled = 0;
  const count = () => later(() => { handled++; });
  Object.defineProperty(window, "__calloptAsked", { get: () => asked });
  Object.defineProperty(window, "__calloptHandled", { get: () => handled });
  window.fetch = function (input) {
    const answer = fetch0.apply(this, arguments);
    const url = new URL(input instanceof Request ? input.url : String(input), location.href);
    if (url.pathname !== "/v1/dni/sessions") return answer;
    asked++;
    // Registered before the tag's own reaction, so this runs first and the tag's in the same
    // microtask checkpoint, before the task queued here.
    answer.then((res) => {
      let reading = null;
      for (const m of ["json", "text", "arrayBuffer", "blob", "formData"]) {
        const read = res[m];
        res[m] = function () { return (reading = read.apply(this, arguments)); };
      }
      later(() => { if (reading) reading.then(count, count); else handled++; });
    }, count);
    return answer;
  };
}

/** Makes those counters count in every page of `context` (call before its first page). */
export function countTagAnswers(context) {
  return context.addInitScript(countHandledAnswers);
}

/** How many requests for a number the tag has made in `page` (see countTagAnswers). */
export const tagAsked = (page) => page.evaluate(() => window.__calloptAsked);

/** Waits (bounded) until the tag has handled `n` answers in `page` (see countTagAnswers). */
export async function tagHandled(page, n = 1) {
  await page.waitForFunction((k) => window.__calloptHandled >= k, n, { timeout: WAIT_MS });
}

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
}

/** Digits only: "(415) 555-0101" -> "4155550101". */
export const digits = (s) => String(s).replace(/\D/g, "");

/** Runs a callopt subcommand to completion and returns its stdout. */
function runCli(bin, args) {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`callopt ${args.join(" ")} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Picks `key: value` out of CLI output. */
function field(out, key) {
  const m = out.match(new RegExp(`^${key}:\\s*(\\S+)\\s*$`, "m"));
  if (!m) throw new Error(`no "${key}:" line in callopt output:\n${out}`);
  return m[1];
}

/**
 * Starts `callopt serve` on port 0 and resolves once it prints its address.
 * Rejects if the process exits first or does not say so within 30 s.
 */
function startService(bin, db) {
  const proc = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--db", db], {
    stdio: ["ignore", "pipe", "pipe"],
    // Pages and verification files are served on loopback.
    env: { ...process.env, CALLOPT_GUARD_ALLOW_PRIVATE: "true" },
  });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr = (stderr + d).slice(-8000); });
  const lines = readline.createInterface({ input: proc.stdout });
  const ready = new Promise((resolve, reject) => {
    const fail = (why) => reject(new Error(`callopt serve ${why}\nstderr:\n${stderr}`));
    const timer = setTimeout(() => { proc.kill("SIGKILL"); fail("printed no address within 30 s"); }, 30_000);
    proc.once("error", (e) => { clearTimeout(timer); fail(`could not start: ${e.message}`); });
    proc.once("exit", (code, sig) => { clearTimeout(timer); fail(`exited (${code ?? sig}) before listening`); });
    lines.on("line", (line) => {
      const m = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  // Keep draining stdout after the address, so the child never blocks on a full pipe.
  return ready.then((base) => ({ proc, base }));
}

async function stopProcess(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, "exit");
  proc.kill("SIGTERM");
  const t = setTimeout(() => proc.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(t);
}

/** Fills the placeholders that the server also fills in web/demo.html. */
export function render(template, vars) {
  return template.replace(/\{\{(\w+)\}\}/g, (all, k) => (k in vars ? vars[k] : all));
}

const escapeAttr = (s) => String(s).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");

export class Harness {
  /** Everything a test needs, started and set up. Call `close()` in `after`. */
  static async start() {
    const h = new Harness();
    try {
      await h.#start();
    } catch (e) {
      await h.close();
      throw e;
    }
    return h;
  }

  async #start() {
    this.bin = process.env.CALLOPT_BIN || path.join(REPO, "target/debug/callopt");
    if (!fs.existsSync(this.bin)) {
      throw new Error(`no callopt binary at ${this.bin}: run \`cargo build\` or set CALLOPT_BIN`);
    }
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "callopt-browser-"));
    // A SQLite file, or a new database on the PostgreSQL server the tests are told of
    // (Callopt creates it when it first opens it).
    const server = process.env.CALLOPT_TEST_POSTGRES;
    this.db = server
      ? `${server.replace(/\/+$/, "")}/callopt_test_${crypto.randomBytes(8).toString("hex")}`
      : path.join(this.dir, "db");
    fs.mkdirSync(ARTIFACTS, { recursive: true });

    const out = await runCli(this.bin, ["account", "create", "--name", "browser-test", "--db", this.db]);
    this.account = field(out, "account");
    this.apiKey = field(out, "api_key");

    await this.startService();
    await this.#startPageServer();
    await this.#setUpCampaign();
    this.browser = await launchChromium();
  }

  /** (Re)starts `callopt serve`; the port changes each time. */
  async startService() {
    const { proc, base } = await startService(this.bin, this.db);
    this.service = proc;
    this.api = base;
  }

  /** Kills `callopt serve` (the database stays). */
  async stopService() {
    await stopProcess(this.service);
  }

  /** The management API, with problem+json details in the error when a step fails. */
  async call(method, route, body, expect) {
    const res = await fetch(this.api + route, {
      method,
      headers: { authorization: `Bearer ${this.apiKey}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== expect) {
      throw new Error(`${method} ${route} ${JSON.stringify(body)}: expected ${expect}, got ${res.status} `
        + `${res.headers.get("content-type")}\n${text}`);
    }
    return JSON.parse(text);
  }

  async #setUpCampaign() {
    const pool = await this.call("POST", "/v1/pools", { name: "browser" }, 201);
    const imported = await this.call("POST", "/v1/numbers/import", {
      pool_id: pool.id, block: { start: POOL[0], count: POOL.length }, languages: ["en"],
    }, 200);
    if (imported.imported !== POOL.length) throw new Error(`imported ${JSON.stringify(imported)}`);
    const domain = await this.call("POST", "/v1/domains", { host: this.pageHost }, 201);
    this.verificationToken = domain.token;
    const verified = await this.call("POST", `/v1/domains/${domain.id}/verify`, undefined, 200);
    if (verified.verified !== true) throw new Error(`domain not verified: ${JSON.stringify(verified)}`);
    const campaign = await this.call("POST", "/v1/campaigns", {
      name: "browser", default_number: DEFAULT_NUMBER, pool_id: pool.id, domains: [this.pageHost],
      trigger_parameter: null, assignment: "per_visitor", idle_timeout_secs: 1800,
    }, 201);
    this.campaign = campaign.key;
    this.campaignId = campaign.id;
  }

  /**
   * Serves `pages/<name>.html` and `web/demo.html` (as `/demo.html`) with the placeholders
   * filled, and the domain verification file. `?tag=<url>` replaces the tag's src and
   * `?timeout=<ms>` sets its data-timeout.
   */
  async #startPageServer() {
    this.pages = http.createServer((req, res) => {
      const url = new URL(req.url, "http://page");
      if (url.pathname === "/.well-known/callopt-verification.txt") {
        res.writeHead(this.verificationToken ? 200 : 404, { "content-type": "text/plain" });
        return res.end(this.verificationToken || "");
      }
      const m = url.pathname.match(/^\/([a-z0-9-]+)\.html$/);
      const file = m && (m[1] === "demo"
        ? path.join(REPO, "web/demo.html")
        : path.join(HERE, "pages", `${m[1]}.html`));
      if (!file || !fs.existsSync(file)) {
        res.writeHead(404, { "content-type": "text/plain" });
        return res.end("not found");
      }
      const html = render(fs.readFileSync(file, "utf8"), {
        TAG_SRC: escapeAttr(url.searchParams.get("tag") || `${this.api}/dni.js`),
        CAMPAIGN: escapeAttr(this.campaign),
        DEFAULT_NUMBER, DEFAULT_DISPLAY,
        TIMEOUT: escapeAttr(url.searchParams.get("timeout") || "2000"),
      });
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      res.end(html);
    });
    this.pages.listen(0, "127.0.0.1");
    await once(this.pages, "listening");
    this.pagePort = this.pages.address().port;
    /** Verified: the campaign's domain. */
    this.pageHost = `127.0.0.1:${this.pagePort}`;
  }

  /**
   * Routes the campaign's calls to two targets in failover order (Center A, concurrency cap 5,
   * then Center B, cap 2; E.164 destinations) and lets a Twilio carrier connection with a known
   * auth token deliver calls on the pool's numbers, so tests place calls the way a carrier
   * does (see `placeCall`).
   */
  async setUpTwilio() {
    const targets = [];
    for (const [i, [name, concurrent]] of [["Center A", 5], ["Center B", 2]].entries()) {
      targets.push(await this.call("POST", "/v1/targets", {
        name, destination: `+1415555900${i}`, priority: i + 1, caps: { concurrent },
      }, 201));
    }
    const plan = await this.call("POST", "/v1/routing-plans", {
      name: "failover", targets: targets.map((t) => t.id), ring_timeout_secs: 20,
      filters: { open_now: false, geography: false, language: false },
    }, 201);
    await this.call("PATCH", `/v1/campaigns/${this.campaignId}`, { routing_plan_id: plan.id }, 200);
    const authToken = crypto.randomBytes(16).toString("hex");
    const connection = await this.call("POST", "/v1/carrier-connections", {
      name: "twilio", carrier: "twilio", auth_token: authToken, numbers: POOL,
    }, 201);
    this.twilio = { authToken, voiceUrl: connection.voice_url, targets };
    return this.twilio;
  }

  /** POSTs form `params` to `url` signed as Twilio signs (X-Twilio-Signature); the answer's text. */
  async twilioPost(url, params) {
    const data = url + Object.keys(params).sort().map((k) => k + params[k]).join("");
    const signature = crypto.createHmac("sha1", this.twilio.authToken).update(data).digest("base64");
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature },
      body: new URLSearchParams(params).toString(),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`POST ${url}: ${res.status}\n${text}`);
    return text;
  }

  /**
   * Starts a call from `caller` on tracking number `to` through the Twilio voice webhook; it
   * rings at the first target. Returns the dial: `{ sid, end(status, talkSecs) }`, where `end`
   * reports the dial's result (`completed` with a talk time, `busy`, `no-answer`) to its
   * `<Dial action>` URL and resolves to the next dial (failover) or null when the call is over.
   */
  async placeCall(caller, to) {
    const sid = "CA" + crypto.randomBytes(16).toString("hex");
    const twiml = await this.twilioPost(this.twilio.voiceUrl, {
      CallSid: sid, AccountSid: "", From: caller, To: to, CallStatus: "ringing", Direction: "inbound",
    });
    const dial = this.#dial(sid, twiml);
    if (!dial) throw new Error(`no <Dial action> in the answer:\n${twiml}`);
    return dial;
  }

  #dial(sid, twiml) {
    const m = twiml.match(/<Dial[^>]*\saction="([^"]+)"/);
    if (!m) return null;
    const action = new URL(m[1].replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, "\"")
      .replace(/&#39;/g, "'").replace(/&amp;/g, "&"), this.twilio.voiceUrl).href;
    return {
      sid,
      end: async (status = "completed", talkSecs = 30) => this.#dial(sid, await this.twilioPost(action, {
        CallSid: sid, AccountSid: "", DialCallStatus: status,
        CallStatus: status === "completed" ? "completed" : "in-progress",
        ...(status === "completed" ? { DialCallDuration: String(talkSecs) } : {}),
      })),
    };
  }

  /** URL of a test page on the verified origin, or on the unverified `localhost` one. */
  pageUrl(name, { unverified = false, query = {} } = {}) {
    const host = unverified ? `localhost:${this.pagePort}` : this.pageHost;
    const qs = new URLSearchParams(query).toString();
    return `http://${host}/${name}.html${qs ? "?" + qs : ""}`;
  }

  /** A new browser context is a new visitor (its own localStorage and cookies). */
  newVisitor(options) {
    return newContext(this.browser, options);
  }

  async close() {
    await this.browser?.close().catch(() => {});
    await stopProcess(this.service);
    if (this.pages) {
      this.pages.closeAllConnections?.();
      await new Promise((r) => this.pages.close(r));
    }
    if (this.dir && !process.env.KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Chromium itself logs failed loads (refused connection, 403) as console errors; those are
// the browser's network log, not the tag writing to the console.
const NETWORK_LOG = /^Failed to load resource|net::ERR_|blocked by CORS policy/;

/**
 * Opens a page in `context` that records script errors (`pageerror`) and console errors
 * in `page.problems`, for the tests to assert there are none.
 */
export async function openPage(context) {
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !NETWORK_LOG.test(m.text())) page.problems.push(`console: ${m.text()}`);
  });
  return page;
}

/** True for the tag's request for a number. */
export const isSessions = (r) => new URL(r.url()).pathname === "/v1/dni/sessions";

export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}
