// End-to-end tests of the dashboard (`/dashboard`): the real callopt binary, calls placed the way
// a carrier places them (signed Twilio webhooks), and Chromium at a laptop's and a phone's size.
// Tests run in order and share the calls they place. Screenshots go to artifacts/dashboard-*.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import {
  Harness, openPage, screenshot, digits, POOL, TEST, SETUP, WAIT_MS, within,
} from "./harness.mjs";

const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };

let h;
before(async () => {
  h = await Harness.start();
  await h.setUpTwilio();
}, SETUP);
after(async () => { await h?.close(); }, SETUP);

/** Polls `probe` (an API read) until it returns a truthy value, for at most WAIT_MS. */
async function until(what, probe) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits until the call records of `n` calls are written and ended. */
const callsWritten = (n) => until(`${n} ended call records`, async () => {
  const { items } = await h.call("GET", "/v1/calls?limit=500", undefined, 200);
  return items.length === n && items.every((c) => c.ended_at) && items;
});

/** A page of the dashboard that records every request, to check where the API key goes. */
async function dashboardPage(context) {
  const page = await openPage(context);
  page.requests = [];
  page.on("request", (r) => page.requests.push({ url: r.url(), headers: r.headers() }));
  await page.goto(`${h.api}/dashboard`);
  return page;
}

async function signIn(page, key = h.apiKey) {
  await page.fill("#api-key", key);
  await page.click(".sign-in button[type=submit]");
}

async function signedIn(context, hash = "") {
  const page = await dashboardPage(context);
  await signIn(page);
  await page.waitForSelector('[data-test="total-calls"]');
  if (hash) await page.evaluate((x) => { location.hash = x; }, hash);
  return page;
}

/** Waits until the page is drawn at its viewport: charts fitted, nothing loading. */
async function settled(page) {
  await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]')
    && [...document.querySelectorAll(".uplot")].every((u) => u.getBoundingClientRect().right
      <= document.documentElement.clientWidth + 1));
}

/**
 * Full-page screenshots at laptop and phone sizes. No missing value may show as text, and on
 * the phone nothing may overflow sideways.
 */
async function shots(page, name) {
  // Text node by text node: a stray "null" between two words of other elements shows too.
  const missing = await page.evaluate(() => {
    const walk = document.createTreeWalker(document.getElementById("main"), NodeFilter.SHOW_TEXT);
    const found = [];
    for (let t = walk.nextNode(); t; t = walk.nextNode()) {
      if (/\b(null|undefined|NaN)\b/.test(t.data)) found.push(t.data);
    }
    return found;
  });
  assert.deepEqual(missing, [], `${name} shows a missing value`);
  await page.setViewportSize(LAPTOP);
  await settled(page);
  await screenshot(page, `dashboard-${name}-laptop`);
  await page.setViewportSize(PHONE);
  await settled(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `${name} on a phone overflows sideways by ${overflow}px`);
  await screenshot(page, `dashboard-${name}-phone`);
  await page.setViewportSize(LAPTOP);
}

const text = (page, test) => page.textContent(`[data-test="${test}"]`);

/** The key never appears in a URL, and every API request carries it as a bearer token. */
function assertKeyOnlyInHeaders(page, tried = []) {
  const keys = [h.apiKey, ...tried];
  for (const r of page.requests) {
    for (const k of keys) assert.ok(!r.url.includes(k), `an API key is in a URL: ${r.url}`);
    const path = new URL(r.url).pathname;
    if (path.startsWith("/v1/")) assert.ok(keys.some((k) => r.headers.authorization === `Bearer ${k}`), path);
  }
}

test("signs in with an API key kept in the tab, and signs out", TEST, async () => {
  const context = await h.newVisitor({ viewport: LAPTOP });
  const page = await dashboardPage(context);
  await page.waitForSelector(".sign-in");
  await shots(page, "sign-in");

  await signIn(page, "cok_not-a-key");
  await page.waitForFunction(() => /not valid/.test(document.querySelector("#sign-in-error").textContent));
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, "a refused key is not kept");

  await signIn(page);
  await page.waitForSelector('[data-test="total-calls"]');
  assert.equal(await page.evaluate(() => sessionStorage.getItem("callopt.apiKey")), h.apiKey);
  assert.ok(!page.url().includes(h.apiKey));
  // A reload stays signed in (same tab); another tab's storage knows nothing of it.
  await page.reload();
  await page.waitForSelector('[data-test="total-calls"]');
  const other = await openPage(await h.newVisitor());
  await other.goto(`${h.api}/dashboard`);
  await other.waitForSelector(".sign-in");

  await page.click("#sign-out");
  await page.waitForSelector(".sign-in");
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assertKeyOnlyInHeaders(page, ["cok_not-a-key"]);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("serves the page and versioned assets with cache and security headers", TEST, async () => {
  const res = await fetch(`${h.api}/dashboard`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("cache-control"), "no-cache");
  assert.match(res.headers.get("content-security-policy"), /script-src 'self'/);
  const html = await res.text();
  const app = html.match(/src="(\/dashboard\/[0-9a-f]{16}\/app\.js)"/);
  assert.ok(app, html);
  const js = await fetch(h.api + app[1]);
  assert.equal(js.status, 200);
  assert.equal(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
  assert.match(js.headers.get("content-type"), /^text\/javascript/);
  // The data is not public: the API refuses a request without the key.
  assert.equal((await fetch(`${h.api}/v1/reports/calls`)).status, 401);
});

/** The number the tag showed a visitor who came from a newsletter, for an attributed call. */
async function visitorNumber() {
  const context = await h.newVisitor();
  const page = await openPage(context);
  await page.goto(h.pageUrl("numbers", { query: { utm_source: "newsletter", utm_medium: "email", gclid: "g-123" } }));
  await page.waitForFunction(() => document.querySelector("strong[data-callopt-number]").textContent !== "call us");
  const number = "+1" + digits(await page.textContent("strong[data-callopt-number]"));
  await context.close();
  assert.ok(POOL.includes(number), number);
  return number;
}

/** Reports each dial's result in turn (`["busy"], ["completed", 60]`), following failover. */
async function call(caller, to, ...dials) {
  let dial = await h.placeCall(caller, to);
  for (const [status, secs] of dials) {
    const next = await dial.end(status, secs);
    if (next) dial = next;
  }
  return dial.sid;
}

let attributed;

test("the overview shows the totals, sources and pages of the calls placed", TEST, async () => {
  attributed = await visitorNumber();
  const other = POOL.filter((n) => n !== attributed);
  await call("+12125550101", attributed, ["completed", 30]);
  await call("+12125550102", other[0], ["completed", 90]);
  await call("+12125550103", other[1], ["busy"], ["completed", 60]);
  await call("+12125550101", other[2], ["busy"], ["no-answer"]);
  await callsWritten(4);
  // The business reports a sale on the second caller's call.
  await h.call("POST", "/v1/conversions", { caller: "+12125550102", at: new Date().toISOString(), value: 120 }, 200);

  const context = await h.newVisitor({ viewport: LAPTOP });
  const page = await signedIn(context);
  assert.equal(await text(page, "total-calls"), "4");
  assert.equal(await text(page, "total-answered"), "3");
  assert.equal(await text(page, "answer-rate"), "75.0%");
  assert.equal(await text(page, "unique-calls"), "3");
  assert.equal(await text(page, "avg-talk"), "1:00");
  assert.equal(await text(page, "unattributed"), "3");
  assert.equal(await text(page, "conversions"), "1 (120)");
  const sources = await page.$$eval('[data-test="top-sources"] tbody tr',
    (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.deepEqual(sources, [["(none)", "3", "2", "66.7%"], ["newsletter", "1", "1", "100.0%"]]);
  const pages = await page.$$eval('[data-test="top-pages"] tbody td.key', (cells) => cells.map((c) => c.textContent));
  assert.deepEqual(pages, ["(none)", `http://${h.pageHost}/numbers.html`]);
  const targets = await page.$$eval('[data-test="targets"] tbody tr',
    (rows) => rows.map((r) => [...r.cells].slice(0, 3).map((c) => c.textContent)));
  assert.deepEqual(targets, [["Center A", "0", "5"], ["Center B", "0", "2"]]);
  await page.waitForSelector('[data-test="calls-chart"] canvas');

  // Another time zone and range: the same four calls, the chart headed with the zone.
  await page.selectOption('select[name="tz"]', "Asia/Tokyo");
  // The range ends today in Tokyo, which after 15:00 UTC is already tomorrow in UTC.
  const tokyoToday = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Tokyo", year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
  await page.fill('input[name="to"]', tokyoToday);
  await page.click('form.filters button[type="submit"]');
  await page.waitForFunction(() => /Asia\/Tokyo/.test(document.querySelector(".card h2")?.textContent));
  assert.equal(await text(page, "total-calls"), "4");
  await shots(page, "overview");
  assertKeyOnlyInHeaders(page);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("a call placed now shows in the live view without a reload, then as finished", TEST, async () => {
  const context = await h.newVisitor({ viewport: LAPTOP });
  const page = await signedIn(context, "#/live");
  await page.waitForSelector('[data-test="live-status"][data-state="live"]');
  await page.evaluate(() => { window.notReloaded = true; });
  const recentBefore = await page.$$eval('[data-test="recent"] tbody tr[data-call-id]',
    (rows) => rows.map((r) => r.dataset.callId));
  assert.equal(new Set(recentBefore).size, 4, "each finished call once");
  assert.equal(recentBefore.length, 4, "each finished call once");

  const dial = await h.placeCall("+12125550199", POOL[10]);
  const ringing = page.locator('[data-test="in-progress"] tr[data-call-id]', { hasText: "+12125550199" });
  await ringing.waitFor();
  assert.match(await ringing.textContent(), /Center A.*ringing/);
  await shots(page, "live");

  // Meanwhile the overview shows the target's load against its cap.
  const overview = await signedIn(await h.newVisitor({ viewport: LAPTOP }));
  assert.equal(await overview.textContent('[data-test="targets"] tr[data-target-id] [data-test="live-calls"]'), "1");
  await overview.context().close();

  await dial.end("completed", 45);
  const finished = page.locator('[data-test="recent"] tr[data-call-id][data-outcome="answered"]', { hasText: "+12125550199" });
  await finished.waitFor();
  assert.match(await finished.textContent(), /0:45/);
  await page.locator('[data-test="in-progress"] tr[data-call-id]').waitFor({ state: "detached" });
  assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  assertKeyOnlyInHeaders(page);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("calls are searchable and a call's detail shows its attribution and every attempt", TEST, async () => {
  await callsWritten(5);
  const context = await h.newVisitor({ viewport: LAPTOP });
  const page = await signedIn(context, "#/calls");
  await page.waitForSelector('[data-test="calls"] tr[data-call-id]');
  assert.equal(await page.locator('[data-test="calls"] tr[data-call-id]').count(), 5);
  // Newest first.
  const shownIds = await page.$$eval('[data-test="calls"] tr[data-call-id]', (rows) => rows.map((r) => Number(r.dataset.callId)));
  assert.deepEqual(shownIds, [...shownIds].sort((a, b) => b - a));
  // The CSV download has the same calls, with the API key sent as a header.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click('[data-test="export-calls"]')]);
  assert.equal(download.suggestedFilename(), "callopt-calls.csv");
  const lines = (await readFile(await download.path(), "utf8")).trim().split("\n");
  assert.match(lines[0], /^id,started_at,/);
  assert.deepEqual(lines.slice(1).map((l) => Number(l.split(",")[0])), shownIds);
  await shots(page, "calls");

  await page.fill('input[name="caller"]', "+12125550103");
  await page.click('[data-test="call-filters"] button[type="submit"]');
  await page.waitForFunction(() => document.querySelectorAll('[data-test="calls"] tr[data-call-id]').length === 1);
  await page.click('[data-test="calls"] tr[data-call-id] a');
  await page.waitForSelector('[data-test="attempts"]');
  const attempts = await page.$$eval('[data-test="attempts"] tbody tr',
    (rows) => rows.map((r) => [...r.cells].slice(0, 5).map((c) => c.textContent)));
  assert.equal(attempts.length, 2, JSON.stringify(attempts));
  assert.deepEqual(attempts[0].slice(0, 4), ["1", "Center A", "+14155559000", "busy"]);
  assert.deepEqual(attempts[1], ["2", "Center B", "+14155559001", "answered", "200"]);
  assert.match(await text(page, "attribution"), /Not attributed/);
  await shots(page, "call-detail-failover");

  // The call on the newsletter visitor's number is attributed to that visit.
  await page.evaluate((n) => { location.hash = `#/calls?tracking_number=${encodeURIComponent(n)}`; }, attributed);
  await page.waitForFunction(() => document.querySelectorAll('[data-test="calls"] tr[data-call-id]').length === 1
    && document.querySelector('[data-test="call-filters"] input[name="tracking_number"]').value !== "");
  await page.click('[data-test="calls"] tr[data-call-id] a');
  await page.waitForSelector('dl[data-test="attribution"]');
  const facts = await text(page, "attribution");
  assert.match(facts, /utm_sourcenewsletter/);
  assert.match(facts, /gclidg-123/);
  assert.match(facts, /numbers\.html\?utm_source=newsletter/);
  assert.equal(await page.locator('[data-test="attempts"] tbody tr').count(), 1);
  await shots(page, "call-detail");
  assertKeyOnlyInHeaders(page);
  assert.deepEqual(page.problems, []);
  await context.close();
});

/** Asks for a number as the tag would, from `origin`. */
async function askForNumber(campaign, origin) {
  const res = await fetch(`${h.api}/v1/dni/sessions`, {
    method: "POST",
    headers: { "content-type": "text/plain;charset=UTF-8", origin },
    body: JSON.stringify({ campaign, visitor: `visitor-${Date.now()}${Math.floor(Math.random() * 1e6)}`, page_url: `${origin}/landing.html` }),
  });
  return { status: res.status, body: await res.json() };
}

test("pool utilisation warns when a pool is nearly exhausted; Guard lists refusals", TEST, async () => {
  const pool = await h.call("POST", "/v1/pools", { name: "Tiny" }, 201);
  await h.call("POST", "/v1/numbers", { e164: "+14155550150", pool_id: pool.id }, 201);
  const campaign = await h.call("POST", "/v1/campaigns", {
    name: "tiny", default_number: "+14155550199", pool_id: pool.id, domains: [h.pageHost],
    trigger_parameter: null,
  }, 201);
  const leased = await askForNumber(campaign.key, `http://${h.pageHost}`);
  assert.equal(leased.body.number, "+14155550150", JSON.stringify(leased));
  const refused = await askForNumber(h.campaign, "http://scam.example");
  assert.equal(refused.status, 403, JSON.stringify(refused));

  const context = await h.newVisitor({ viewport: LAPTOP });
  const page = await signedIn(context, "#/pools");
  await page.waitForSelector('[data-test="exhaustion-warning"]');
  assert.match(await text(page, "exhaustion-warning"), /^Tiny: 90% or more/);
  const rows = await page.$$eval('[data-test="pools"] tbody tr',
    (r) => r.map((row) => [...row.cells].slice(0, 4).map((c) => c.textContent)));
  assert.deepEqual(rows.find((r) => r[0].startsWith("Tiny")), ["Tinynear exhaustion", "1", "1", "100.0%"]);
  const browser = rows.find((r) => r[0] === "browser");
  assert.equal(browser[2], String(POOL.length));
  await shots(page, "pools");

  await page.click('nav a[data-page="guard"]');
  await page.waitForSelector('[data-test="refusals"]');
  const refusals = await page.$$eval('[data-test="refusals"] tbody tr', (r) => r.map((row) => row.textContent));
  assert.ok(refusals.some((r) => r.includes("unverified origin") && r.includes("scam.example")), refusals.join("\n"));
  assert.match(await text(page, "domains"), new RegExp(`${h.pageHost.replace(/\./g, "\\.")}yes`));
  // The tiny campaign's first session queued a scan of its page.
  const scans = await page.$$eval('[data-test="scans"] tbody tr',
    (r) => r.map((row) => [...row.cells].slice(1, 3).map((c) => c.textContent)));
  assert.ok(scans.some(([url, c]) => url.startsWith(`http://${h.pageHost}`) && c === "tiny"), JSON.stringify(scans));
  assert.match(await text(page, "quarantines"), /No quarantines\./);
  await shots(page, "guard");

  // On a phone the navigation folds into a menu.
  await page.setViewportSize(PHONE);
  assert.equal(await page.isVisible('nav a[data-page="live"]'), false);
  await page.click("#menu");
  await page.click('nav a[data-page="live"]');
  await page.waitForSelector('[data-test="live-status"][data-state="live"]');
  await within(page.evaluate(() => document.body.dataset.page), "page name");
  await screenshot(page, "dashboard-live-phone-menu");
  assertKeyOnlyInHeaders(page);
  assert.deepEqual(page.problems, []);
  await context.close();
});
