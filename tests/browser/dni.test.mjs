// End-to-end tests of the DNI tag: the real callopt binary, its /dni.js, a verified page origin,
// and Chromium. Run with `npm test` in tests/browser (see harness.mjs for the environment).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { once } from "node:events";
import {
  Harness, openPage, screenshot, isSessions, digits, POOL, DEFAULT_NUMBER, DEFAULT_DISPLAY,
  TEST, SETUP, within, countTagAnswers, tagHandled,
} from "./harness.mjs";

let h;
before(async () => { h = await Harness.start(); }, SETUP);
after(async () => { await h?.close(); }, SETUP);

const POOL_NSN = POOL.map((n) => n.slice(2));

/** Opens the numbers page for a new or given visitor and waits until the tag has swapped. */
async function swappedPage(context, query) {
  const page = await openPage(context);
  const answer = page.waitForResponse(isSessions);
  await page.goto(h.pageUrl("numbers", { query }));
  assert.equal((await answer).status(), 200, "the tag's request for a number");
  await page.waitForFunction(() => document.querySelector("strong[data-callopt-number]").textContent !== "call us");
  return page;
}

/** The number shown in the data-callopt-number element. */
const shown = (page) => page.textContent("strong[data-callopt-number]");

const text = (page, sel) => page.textContent(sel);
const href = (page, sel) => page.getAttribute(sel, "href");

test("swaps the default number in text of every format, tel: links and data-callopt-number", TEST, async () => {
  const context = await h.newVisitor();
  const page = await swappedPage(context);
  const display = await shown(page);
  const nsn = digits(display);
  assert.ok(POOL_NSN.includes(nsn), `${display} is one of the pool's numbers`);
  assert.notEqual(nsn, digits(DEFAULT_DISPLAY));
  const tel = "tel:+1" + nsn;

  assert.equal(await text(page, "#cta"), display);
  assert.equal(await text(page, "#tracked-link"), display);
  assert.equal(await href(page, "#tracked-link"), tel);
  const formats = {
    "#f-intl-dash": `International: ${display}.`,
    "#f-paren": `Office ${display}, open now.`,
    "#f-dots": `Dots ${display}`,
    "#f-dashes": `${display} is our line`,
    "#f-bare": `Bare ${display}`,
    "#f-trunk": `Long distance ${display}`,
    "#f-e164": `E.164 ${display}`,
    "#f-idd": `From abroad: ${display}`,
    "#f-after-digits": `Open 24/7 ${display} for you`,
    "#f-two": `Sales ${display} or support ${display}.`,
  };
  for (const [sel, want] of Object.entries(formats)) assert.equal(await text(page, sel), want, sel);
  for (const sel of ["#cta", "#tel-e164", "#tel-national", "#tel-spaces"]) {
    assert.equal(await href(page, sel), tel, sel);
  }
  assert.equal(await page.title(), `Numbers test page — ${display}`);

  // Other numbers, form fields, contenteditable and scripts are left alone.
  assert.equal(await text(page, "#other"), "Another number (415) 555-0199 and order 4155550100123.");
  assert.equal(await href(page, "#tel-other"), "tel:+14155550199");
  assert.equal(await page.inputValue("#ta"), "(415) 555-0100");
  assert.equal(await page.inputValue("#in"), "415-555-0100");
  assert.equal(await text(page, "#ce"), "Edit me: 415-555-0100");
  assert.equal(await page.evaluate(() => window.pageNumber), "(415) 555-0100");
  assert.match(await text(page, "#sc"), /\(415\) 555-0100/);

  await screenshot(page, "swapped");
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("another visitor gets a different number", TEST, async () => {
  const first = await h.newVisitor();
  const second = await h.newVisitor();
  const a = await swappedPage(first);
  const b = await swappedPage(second);
  const [na, nb] = [digits(await shown(a)), digits(await shown(b))];
  assert.ok(POOL_NSN.includes(na) && POOL_NSN.includes(nb), `${na}, ${nb} from the pool`);
  assert.notEqual(na, nb);
  await screenshot(b, "second-visitor");
  assert.deepEqual([...a.problems, ...b.problems], []);
  await first.close();
  await second.close();
});

test("the same visitor keeps its number on reload", TEST, async () => {
  const context = await h.newVisitor();
  const page = await swappedPage(context);
  const number = await shown(page);
  const vid = await page.evaluate(() => localStorage.getItem("callopt_vid"));
  assert.match(vid, /^[A-Za-z0-9_-]{22,}$/);

  const answer = page.waitForResponse(isSessions);
  await page.reload();
  const body = JSON.parse((await answer).request().postData());
  assert.equal(body.visitor, vid, "the reloaded page sends the same visitor id");
  await page.waitForFunction(() => document.querySelector("strong[data-callopt-number]").textContent !== "call us");
  assert.equal(await shown(page), number);
  assert.equal(await text(page, "#cta"), number);
  await screenshot(page, "reloaded");
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("the tag sends the contract's request", TEST, async () => {
  const context = await h.newVisitor();
  const page = await openPage(context);
  const request = page.waitForRequest(isSessions);
  const url = h.pageUrl("numbers", { query: { utm_source: "google", gclid: "test" } });
  await page.goto(url, { referer: "https://search.example/?q=plumber" });
  const req = await request;
  assert.equal(req.method(), "POST");
  assert.equal(req.headers()["content-type"], "text/plain;charset=UTF-8");
  const body = JSON.parse(req.postData());
  assert.deepEqual(Object.keys(body).sort(), ["campaign", "page_url", "referrer", "visitor"]);
  assert.equal(body.campaign, h.campaign);
  assert.equal(body.page_url, url);
  assert.equal(body.referrer, "https://search.example/?q=plumber");
  assert.equal(new URL(req.url()).origin, h.api, "the API base is the origin of the tag's src");
  assert.equal(await within((await req.response()).finished(), "the answer finishing loading"), null);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("a page on an unverified origin keeps its default number", TEST, async () => {
  const context = await h.newVisitor();
  await countTagAnswers(context);
  const page = await openPage(context);
  const answer = page.waitForResponse(isSessions);
  await page.goto(h.pageUrl("numbers", { unverified: true }));
  const res = await answer;
  assert.equal(res.status(), 403, "no number for an origin that is not a verified domain");
  // Not res.finished(): the tag does not read the body of a non-2xx answer, and Chromium does
  // not finish loading a fetch() whose body nobody reads, so that would wait forever.
  await tagHandled(page);
  assert.equal(await page.evaluate(() => window.callopt.version), "1.0.0", "the tag ran");
  assert.equal(await shown(page), "call us");
  assert.equal(await text(page, "#cta"), DEFAULT_DISPLAY);
  assert.equal(await href(page, "#cta"), "tel:" + DEFAULT_NUMBER);
  assert.equal(await text(page, "#f-paren"), "Office (415) 555-0100, open now.");
  assert.equal(await page.evaluate(() => window.__events), undefined, "no callopt:number event");
  await screenshot(page, "unverified-origin");
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("a number that a script adds after load is swapped", TEST, async () => {
  const context = await h.newVisitor();
  const page = await swappedPage(context);
  const display = await shown(page);
  await page.click("#add");
  await page.waitForFunction((d) => document.querySelector("#added-link")?.textContent === d, display);
  assert.equal(await text(page, "#added"), `Added: ${display}`);
  assert.equal(await href(page, "#added-link"), "tel:+1" + digits(display));

  // A single-page app rewriting existing text and attributes.
  await page.evaluate(() => {
    document.querySelector("#f-dots").firstChild.nodeValue = "Changed to 415.555.0100";
    document.querySelector("#tel-other").setAttribute("href", "tel:+14155550100");
    document.querySelector("strong[data-callopt-number]").textContent = "(415) 555-0100";
  });
  await page.waitForFunction((d) => document.querySelector("#f-dots").textContent === `Changed to ${d}`
    && document.querySelector("strong[data-callopt-number]").textContent === d
    && document.querySelector("#tel-other").getAttribute("href") !== "tel:+14155550100", display);
  assert.equal(await href(page, "#tel-other"), "tel:+1" + digits(display));
  await screenshot(page, "added-later");
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("callopt.onNumber and the callopt:number event give the number", TEST, async () => {
  const context = await h.newVisitor();
  const page = await swappedPage(context);
  const display = await shown(page);
  const queued = await page.evaluate(() => window.__queued);
  assert.equal(queued.display, display);
  assert.equal(queued.number, "+1" + digits(display));
  assert.ok(POOL.includes(queued.number));
  assert.equal(typeof queued.session, "string");
  assert.ok(queued.session.length > 0);
  assert.equal(typeof queued.attributed, "boolean");
  assert.deepEqual(await page.evaluate(() => window.__events), [queued], "one event, same detail");
  // A callback registered once the number is known is called at once.
  const late = await page.evaluate(() => new Promise((r) => window.callopt.onNumber(r)));
  assert.deepEqual(late, queued);
  assert.equal(await page.evaluate(() => window.callopt.version), "1.0.0");
  // The queued callback that throws did not surface as a page error.
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("the lease is renewed with the same body and keeps the number", TEST, async () => {
  const context = await h.newVisitor();
  await context.clock.install();
  const page = await openPage(context);
  const first = page.waitForResponse(isSessions);
  // The installed clock runs on with real time: a long request timeout, so that a slow
  // renewal is not aborted by the tag before it is answered.
  await page.goto(h.pageUrl("numbers", { query: { timeout: 60000 } }));
  const answer = await (await first).json();
  await page.waitForFunction(() => document.querySelector("strong[data-callopt-number]").textContent !== "call us");
  assert.ok(answer.renew_after_seconds > 0);

  const renewal = page.waitForResponse(isSessions);
  // The tag renews no more often than every 10 s, whatever the server says.
  await page.clock.runFor(Math.max(answer.renew_after_seconds, 10) * 1000 + 1000);
  const res = await renewal;
  assert.equal(res.request().postData(), (await first).request().postData(), "same body");
  assert.equal(res.status(), 200);
  const renewed = await res.json();
  assert.equal(renewed.number, answer.number);
  assert.equal(await shown(page), answer.display);
  assert.deepEqual(page.problems, []);
  await context.close();
});

test("the demo page swaps and shows what Callopt did", TEST, async () => {
  const context = await h.newVisitor({ viewport: { width: 390, height: 844 } });
  const page = await openPage(context);
  const answer = page.waitForResponse(isSessions);
  await page.goto(h.pageUrl("demo", { query: { utm_source: "google", gclid: "demo" } }));
  const body = await (await answer).json();
  await page.waitForFunction((n) => document.querySelector("#what-number")?.textContent === n, body.number);
  assert.equal(await text(page, "#cta"), body.display);
  assert.equal(await href(page, "#cta"), "tel:" + body.number);
  assert.equal(await text(page, "#what-session"), body.session);
  assert.equal(await text(page, "[data-callopt-number]"), body.display);
  await page.click("#add-later");
  await page.waitForFunction((d) => [...document.querySelectorAll(".later")].at(-1)?.textContent.includes(d),
    body.display);
  assert.ok(!(await page.textContent("main")).includes(DEFAULT_DISPLAY), "no default number left in main");
  await screenshot(page, "demo");
  assert.deepEqual(page.problems, []);
  await context.close();
});

/** Serves the tag's bytes, and holds every request for a number open without answering. */
async function hangingApi(tag) {
  const held = [];
  const srv = http.createServer((req, res) => {
    if (req.url === "/dni.js") {
      res.writeHead(200, { "content-type": "application/javascript" });
      return res.end(tag);
    }
    held.push(res);
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  return {
    base: `http://127.0.0.1:${srv.address().port}`,
    close: () => { srv.closeAllConnections(); return new Promise((r) => srv.close(r)); },
  };
}

/** Asserts the numbers page still shows only the default number. */
async function assertUnchanged(page) {
  assert.equal(await shown(page), "call us");
  assert.equal(await text(page, "#cta"), DEFAULT_DISPLAY);
  assert.equal(await href(page, "#cta"), "tel:" + DEFAULT_NUMBER);
  assert.equal(await text(page, "#f-dashes"), "415-555-0100 is our line");
  assert.equal(await page.evaluate(() => window.__queued), undefined);
}

test("a service that does not answer: the time limit ends the request, the page is unchanged", TEST, async () => {
  const tag = await (await fetch(`${h.api}/dni.js`)).text();
  const api = await hangingApi(tag);
  try {
    const context = await h.newVisitor();
    await countTagAnswers(context);
    const page = await openPage(context);
    const sent = page.waitForRequest(isSessions);
    const failed = page.waitForEvent("requestfailed", { predicate: isSessions, timeout: 10_000 });
    await page.goto(h.pageUrl("numbers", { query: { tag: `${api.base}/dni.js`, timeout: 1000 } }));
    await sent;
    const t0 = Date.now();
    await failed;
    const waited = Date.now() - t0;
    assert.ok(waited < 8000, `the request was aborted after ${waited} ms (data-timeout=1000)`);
    await tagHandled(page);
    await assertUnchanged(page);
    await screenshot(page, "service-hanging");
    assert.deepEqual(page.problems, []);
    await context.close();
  } finally {
    await api.close();
  }
});

test("with the service stopped the page keeps its number and has no script errors", TEST, async () => {
  const tag = await (await fetch(`${h.api}/dni.js`)).text();
  await h.stopService();
  try {
    const context = await h.newVisitor();
    await countTagAnswers(context);
    const page = await openPage(context);
    // The tag's own file would not load either; serve the bytes the service served.
    await page.route("**/dni.js", (route) => route.fulfill({ contentType: "application/javascript", body: tag }));
    const failed = page.waitForEvent("requestfailed", { predicate: isSessions, timeout: 10_000 });
    const t0 = Date.now();
    await page.goto(h.pageUrl("numbers"));
    await failed;
    assert.ok(Date.now() - t0 < 8000, "the page is done quickly");
    await tagHandled(page);
    await assertUnchanged(page);
    await screenshot(page, "service-stopped");
    assert.deepEqual(page.problems, []);
    await context.close();
  } finally {
    await h.startService();
  }
});
