// Tests of web/dni.js alone, in Chromium, with canned answers from Playwright routes: the
// answers and formats that the real server (dni.test.mjs) cannot easily be made to give.
// No network: every URL below is fulfilled by the route handler.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  launchChromium, openPage, isSessions, REPO, TEST, SETUP, newContext, countTagAnswers, tagAsked,
  tagHandled,
} from "./harness.mjs";

const TAG = fs.readFileSync(path.join(REPO, "web/dni.js"), "utf8");
const SITE = "http://shop.test";
const API = "http://api.test";

let browser;
before(async () => { browser = await launchChromium(); }, SETUP);
after(async () => { await browser?.close(); }, SETUP);

const GERMAN = {
  swap: true, session: "ses_de", number: "+493090182999", display: "030 90182999",
  replace: [{ e164: "+493090182000", nsn: "3090182000", cc: "49" }],
  expires_at: "2026-11-23T20:00:00Z", lease_seconds: 1800, renew_after_seconds: 900, attributed: false,
};

const GERMAN_PAGE = `<!doctype html><html><head><meta charset="utf-8">
<script src="${API}/dni.js" data-campaign="cmp_de" async></script></head><body>
<p id="national">030 90182000</p>
<p id="intl">+49 30 90182000</p>
<p id="trunk-in-parens">+49 (0)30 90182000</p>
<p id="idd">0049 30 90182000</p>
<p id="slash">030/901 820 00</p>
<p id="other">030 90182001</p>
<a id="tel" href="tel:+49-30-90182000">Anrufen</a>
<p><span id="tracked" data-callopt-number>—</span></p>
</body></html>`;

/**
 * A new visitor whose requests are all answered here: `page` is the HTML of SITE/page.html,
 * `answer` the sessions answer ({status, body} or a function of the request).
 */
async function visitor({ page, answer, init }) {
  const context = await newContext(browser);
  await countTagAnswers(context);
  if (init) await context.addInitScript(init);
  const sessions = [];
  await context.route("**/*", (route) => {
    const req = route.request();
    const url = new URL(req.url());
    if (url.origin === SITE) return route.fulfill({ contentType: "text/html", body: page });
    if (url.href === `${API}/dni.js`) return route.fulfill({ contentType: "application/javascript", body: TAG });
    if (url.href === `${API}/v1/dni/sessions`) {
      sessions.push(JSON.parse(req.postData()));
      const a = typeof answer === "function" ? answer(req) : answer;
      return route.fulfill({
        status: a.status ?? 200,
        headers: { "access-control-allow-origin": SITE, "content-type": "application/json" },
        body: typeof a.body === "string" ? a.body : JSON.stringify(a.body),
      });
    }
    return route.abort();
  });
  return { context, sessions };
}

/** Loads the page and waits until the tag has had the answer and acted on it (or not). */
async function load(context, url = `${SITE}/page.html`) {
  const page = await openPage(context);
  await page.goto(url);
  await tagHandled(page);
  return page;
}

test("German numbers are swapped in national and international formats", TEST, async () => {
  const { context } = await visitor({ page: GERMAN_PAGE, answer: { body: GERMAN } });
  const page = await load(context);
  await page.waitForFunction(() => document.getElementById("tracked").textContent === "030 90182999");
  for (const id of ["national", "intl", "trunk-in-parens", "idd", "slash"]) {
    assert.equal(await page.textContent(`#${id}`), "030 90182999", id);
  }
  assert.equal(await page.textContent("#other"), "030 90182001");
  assert.equal(await page.getAttribute("#tel", "href"), "tel:+493090182999");
  assert.deepEqual(page.problems, []);
  await context.close();
});

/** Answers after which the page must stay exactly as it was. */
const IGNORED = {
  "swap false": { body: { swap: false } },
  "a server error": { status: 500, body: "<h1>oops</h1>" },
  "a 403 problem": { status: 403, body: { type: "about:blank", title: "Forbidden", status: 403 } },
  "a 404 that looks like a swap": { status: 404, body: GERMAN },
  "malformed JSON": { body: "{\"swap\": true," },
  "JSON null": { body: "null" },
  "a malformed number": { body: { ...GERMAN, number: "030 90182999" } },
  "no replace list": { body: { ...GERMAN, replace: undefined } },
};

for (const [name, answer] of Object.entries(IGNORED)) {
  test(`after ${name} the page is unchanged, with no errors`, TEST, async () => {
    const init = () => {
      window.callopt = [function () { window.__called = true; }];
      document.addEventListener("callopt:number", () => { window.__event = true; });
    };
    const { context, sessions } = await visitor({ page: GERMAN_PAGE, answer, init });
    const page = await load(context);
    assert.equal(await tagAsked(page), 1);
    assert.equal(sessions.length, 1);
    assert.equal(await page.textContent("#national"), "030 90182000");
    assert.equal(await page.textContent("#tracked"), "—");
    assert.equal(await page.getAttribute("#tel", "href"), "tel:+49-30-90182000");
    assert.deepEqual(await page.evaluate(() => [window.__called, window.__event]), [undefined, undefined]);
    assert.deepEqual(page.problems, []);
    await context.close();
  });
}

test("the display text is written as text, never as HTML", TEST, async () => {
  const display = '<img src=x onerror="window.__xss=1">';
  const { context } = await visitor({ page: GERMAN_PAGE, answer: { body: { ...GERMAN, display } } });
  const page = await load(context);
  await page.waitForFunction((d) => document.getElementById("tracked").textContent === d, display);
  assert.equal(await page.evaluate(() => document.querySelectorAll("img").length), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("without data-campaign the tag asks for nothing and changes nothing", TEST, async () => {
  const html = GERMAN_PAGE.replace(' data-campaign="cmp_de"', "");
  const { context, sessions } = await visitor({ page: html, answer: { body: GERMAN } });
  const page = await openPage(context);
  await page.goto(`${SITE}/page.html`);
  await page.waitForFunction(() => window.callopt && window.callopt.version === "1.0.0");
  // The tag runs to its end in one go: had it asked, fetch would have been called by now.
  assert.equal(await tagAsked(page), 0);
  assert.equal(sessions.length, 0);
  assert.equal(await page.textContent("#national"), "030 90182000");
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("without localStorage the visitor id lives in a first-party cookie", TEST, async () => {
  const init = () => {
    Object.defineProperty(window, "localStorage", {
      get() { throw new DOMException("denied", "SecurityError"); },
    });
  };
  const { context, sessions } = await visitor({ page: GERMAN_PAGE, answer: { body: GERMAN }, init });
  const page = await load(context);
  await load(context); // a second page view: same visitor
  assert.equal(sessions.length, 2);
  assert.match(sessions[0].visitor, /^[A-Za-z0-9_-]{22,}$/);
  assert.equal(sessions[1].visitor, sessions[0].visitor);
  const [cookie] = (await context.cookies(SITE)).filter((c) => c.name === "callopt_vid");
  assert.equal(cookie.value, sessions[0].visitor);
  assert.equal(cookie.sameSite, "Lax");
  assert.equal(cookie.path, "/");
  const year = 365 * 24 * 3600;
  assert.ok(Math.abs(cookie.expires - Date.now() / 1000 - year) < 3600, "kept for a year");
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("the tag loaded twice asks once", TEST, async () => {
  const html = GERMAN_PAGE.replace("</body>",
    `<script src="${API}/dni.js" data-campaign="cmp_de"></script></body>`);
  const { context, sessions } = await visitor({ page: html, answer: { body: GERMAN } });
  const page = await load(context);
  await page.waitForFunction(() => document.getElementById("tracked").textContent === "030 90182999");
  // Both copies have run: the page's load event waits for async scripts too.
  assert.equal(await tagAsked(page), 1);
  assert.equal(sessions.length, 1);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("renewal waits while the page is hidden, then happens once when it is visible again", TEST, async () => {
  // Chromium's headless pages are always visible: let the test decide.
  const init = () => {
    window.__visibility = "visible";
    Object.defineProperty(document, "visibilityState", { get: () => window.__visibility });
  };
  // The installed clock runs on with real time: a long request timeout, so that a slow
  // renewal is not aborted by the tag before it is answered.
  const html = GERMAN_PAGE.replace('data-campaign="cmp_de" async', 'data-campaign="cmp_de" data-timeout="60000" async');
  const { context, sessions } = await visitor({ page: html, answer: { body: GERMAN }, init });
  await context.clock.install();
  const page = await load(context);
  await page.waitForFunction(() => document.getElementById("tracked").textContent === "030 90182999");
  const show = (state) => page.evaluate((s) => {
    window.__visibility = s;
    document.dispatchEvent(new Event("visibilitychange"));
  }, state);

  await show("hidden");
  // runFor fires the due timers inside the page before it returns; the tag would have called
  // fetch from its timer.
  await page.clock.runFor((GERMAN.renew_after_seconds + 60) * 1000);
  assert.equal(await tagAsked(page), 1, "no renewal while hidden");
  assert.equal(sessions.length, 1, "no renewal while hidden");

  const renewal = page.waitForEvent("requestfinished", { predicate: isSessions });
  await show("visible");
  await renewal;
  await tagHandled(page, 2);
  assert.equal(sessions.length, 2, "renewed on becoming visible");
  assert.deepEqual(sessions[1], sessions[0], "the same body");
  await show("hidden");
  await show("visible"); // the tag's visibilitychange listener runs within dispatchEvent
  assert.equal(await tagAsked(page), 2, "not again before the interval has passed");
  assert.equal(sessions.length, 2, "not again before the interval has passed");

  const next = page.waitForEvent("requestfinished", { predicate: isSessions });
  await page.clock.runFor((GERMAN.renew_after_seconds + 1) * 1000);
  await next;
  assert.equal(sessions.length, 3, "and again after the next interval");
  assert.deepEqual(page.problems, []);
  await context.close();
});
