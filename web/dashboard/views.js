// The dashboard's pages: overview, live calls, calls, call detail, pools and Guard. Each view
// fills its container from the API and may return a function that stops what it started.
// Everything from the API is written as text (never as HTML): callers, landing pages and
// referrers are visitor input.
import uPlot from "./vendor/uPlot.esm.js";
import { get, followLive, download } from "./api.js";

/** An element: attributes (`on…` functions become listeners), then children (strings are text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const number = new Intl.NumberFormat();
const n = (v) => number.format(v ?? 0);
const pct = (v) => `${(100 * (v ?? 0)).toFixed(1)}%`;
const DASH = "—";

/** Seconds as `m:ss` or `h:mm:ss`. */
function duration(secs) {
  if (secs === null || secs === undefined) return DASH;
  // A carrier's reported talk time can exceed what Callopt saw of the call: never below zero.
  const s = Math.max(0, Math.round(secs));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const when = (rfc3339) => (rfc3339 ? timeFormat.format(new Date(rfc3339)) : DASH);

/** `YYYY-MM-DD` of today in `tz`. */
function today(tz) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date());
}

/** `YYYY-MM-DD` plus `days`. */
function addDays(date, days) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

const validDate = (s) => /^\d{4}-\d{2}-\d{2}$/.test(s || "") && !Number.isNaN(Date.parse(`${s}T00:00:00Z`));

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

function zones(selected) {
  let all = [];
  try {
    all = Intl.supportedValuesOf("timeZone");
  } catch {
    all = ["UTC"];
  }
  if (!all.includes("UTC")) all.unshift("UTC");
  if (!all.includes(selected)) all.unshift(selected);
  return all.map((z) => h("option", { value: z, selected: z === selected }, z));
}

/** A table in a horizontally scrolling wrapper (phones), with `empty` when there are no rows. */
function table(headers, rows, { empty = "Nothing yet.", test } = {}) {
  const body = h("tbody", {}, rows);
  const t = h("table", { "data-test": test },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))), body);
  if (!rows.length) body.append(h("tr", { class: "empty" }, h("td", { colspan: headers.length }, empty)));
  return h("div", { class: "table-wrap" }, t);
}

function tile(label, value, test) {
  return h("div", { class: "tile" }, h("span", { class: "label" }, label), h("strong", { "data-test": test }, value));
}

function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}

function outcomeBadge(outcome) {
  return h("span", { class: `badge outcome-${outcome || "none"}` }, (outcome || "ringing").replace(/_/g, " "));
}

const callLink = (call, text) => h("a", { href: `#/calls/${call.id}` }, text);

/** A list of every page of a listing, up to `max` items (the API pages by cursor). */
async function all(path, params, signal, max = 1000) {
  const items = [];
  let cursor;
  do {
    const page = await get(path, { ...params, limit: 500, cursor }, { signal });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return { items, more: Boolean(cursor) };
}

// ---------------------------------------------------------------------------------- overview

function rangeForm(page, { from, to, tz }) {
  const form = h("form", { class: "filters", method: "post", action: "#" },
    h("label", {}, "From", h("input", { type: "date", name: "from", value: from, required: true })),
    h("label", {}, "To", h("input", { type: "date", name: "to", value: to, required: true })),
    h("label", {}, "Time zone", h("select", { name: "tz" }, zones(tz))),
    h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    location.hash = `#/${page}?${new URLSearchParams({ from: data.get("from"), to: data.get("to"), tz: data.get("tz") })}`;
  });
  return form;
}

function callsChart(report, tz) {
  const xs = report.rows.map((r) => Date.parse(r.start) / 1000);
  const calls = report.rows.map((r) => r.calls);
  const answered = report.rows.map((r) => r.answered);
  const box = h("div", { class: "chart", "data-test": "calls-chart", role: "img",
    "aria-label": `Calls per ${report.group_by}: ${n(report.totals.calls)} in all` });
  const bars = uPlot.paths.bars({ size: [0.7, 40] });
  const step = report.group_by === "hour" ? 3600 : 86400;
  const opts = {
    width: 600,
    height: 240,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz),
    // Half a bucket either side, so the first and last bars show whole.
    scales: { x: { time: true, range: (u, min, max) => [min - step / 2, max + step / 2] }, y: { range: (u, min, max) => [0, Math.max(4, max)] } },
    axes: [{}, { values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? n(v) : "")) }],
    series: [
      {},
      { label: "Calls", stroke: "#3867d6", fill: "rgba(56,103,214,0.35)", paths: bars, points: { show: false } },
      { label: "Answered", stroke: "#20bf6b", width: 2, points: { size: 5 } },
    ],
    legend: { live: true },
  };
  const plot = new uPlot(opts, [xs, calls, answered], box);
  const fit = () => plot.setSize({ width: Math.max(260, box.clientWidth), height: box.clientWidth < 500 ? 200 : 260 });
  const observer = new ResizeObserver(fit);
  observer.observe(box);
  return { box, stop: () => { observer.disconnect(); plot.destroy(); } };
}

function breakdown(report, label, test) {
  const rows = report.rows.slice(0, 8).map((r) => h("tr", {},
    h("td", { class: "key" }, r.key ?? "(none)"), h("td", { class: "num" }, n(r.calls)),
    h("td", { class: "num" }, n(r.answered)), h("td", { class: "num" }, pct(r.answer_rate))));
  return table([label, "Calls", "Answered", "Answer rate"], rows, { test, empty: "No calls in this range." });
}

function targetLoad(targets) {
  const rows = targets.map((t) => {
    const cap = t.caps?.concurrent;
    const meter = cap
      ? h("meter", { min: 0, max: cap, value: t.live_calls, high: cap * 0.9, optimum: 0, "aria-label": `${t.name} load` })
      : null;
    return h("tr", { "data-target-id": t.id },
      h("td", {}, t.name, t.enabled ? null : h("span", { class: "badge" }, "disabled")),
      h("td", { class: "num", "data-test": "live-calls" }, n(t.live_calls)),
      h("td", { class: "num" }, cap ? n(cap) : "no cap"),
      h("td", {}, meter));
  });
  return table(["Target", "Live calls", "Concurrency cap", "Load"], rows, { test: "targets", empty: "No targets." });
}

async function overview(el, { params, signal }) {
  const tz = params.get("tz") || browserZone();
  const to = validDate(params.get("to")) ? params.get("to") : today(tz);
  const from = validDate(params.get("from")) ? params.get("from") : addDays(to, -29);
  const days = Math.round((Date.parse(to) - Date.parse(from)) / 86_400_000) + 1;
  const q = { from, to: addDays(to, 1), time_zone: tz };
  el.append(h("h1", {}, "Overview"), rangeForm("overview", { from, to, tz }));
  const [series, sources, pages, targets] = await Promise.all([
    get("/v1/reports/calls", { ...q, group_by: days <= 2 ? "hour" : "day" }, { signal }),
    get("/v1/reports/calls", { ...q, group_by: "source" }, { signal }),
    get("/v1/reports/calls", { ...q, group_by: "landing_page" }, { signal }),
    all("/v1/targets", {}, signal, 500),
  ]);
  const t = series.totals;
  const tiles = h("div", { class: "tiles" },
    tile("Calls", n(t.calls), "total-calls"),
    tile("Answered", n(t.answered), "total-answered"),
    tile("Answer rate", pct(t.answer_rate), "answer-rate"),
    tile("Unique calls", n(t.unique_calls), "unique-calls"),
    tile("Average talk time", duration(t.avg_talk_secs), "avg-talk"),
    tile("Conversions", t.conversions ? `${n(t.conversions)} (${n(Math.round(t.conversion_value))})` : "0", "conversions"),
    tile("Unattributed", n(t.unattributed), "unattributed"));
  const chart = callsChart(series, tz);
  el.append(tiles,
    section(`Calls per ${series.group_by} (${tz})`, chart.box),
    h("div", { class: "columns" },
      section("Top sources", breakdown(sources, "Source", "top-sources")),
      section("Top landing pages", breakdown(pages, "Landing page", "top-pages"))),
    section("Targets: live load against concurrency caps", targetLoad(targets.items)));
  return chart.stop;
}

// -------------------------------------------------------------------------------- live calls

function liveRow(call, targets) {
  const last = call.attempts[call.attempts.length - 1];
  const target = last ? (targets.get(last.target_id) || last.destination) : DASH;
  const state = call.outcome !== "in_progress" ? outcomeBadge(call.outcome)
    : call.answered_at ? h("span", { class: "badge outcome-connected" }, "connected")
      : h("span", { class: "badge outcome-ringing" }, "ringing");
  return h("tr", { "data-call-id": call.id, "data-outcome": call.outcome },
    h("td", {}, callLink(call, call.caller || "(unknown)")),
    h("td", {}, call.tracking_number),
    h("td", {}, target),
    h("td", {}, state),
    h("td", { class: "num" }, duration(call.talk_secs)),
    h("td", {}, when(call.outcome === "in_progress" ? call.started_at : call.ended_at)));
}

async function live(el, { signal }) {
  const targetList = await all("/v1/targets", {}, signal, 500);
  const targets = new Map(targetList.items.map((t) => [t.id, t.name]));
  const status = h("span", { class: "status", "data-test": "live-status", role: "status" }, "connecting…");
  const inProgressBox = h("div");
  const recentBox = h("div");
  el.append(h("h1", {}, "Live calls ", status),
    section("In progress", inProgressBox),
    section("Latest finished", recentBox));
  const inProgress = new Map();
  let recent = [];
  const headers = ["Caller", "Tracking number", "Target", "State", "Talk", "Since / ended"];
  const draw = () => {
    const current = [...inProgress.values()].sort((a, b) => a.id - b.id);
    inProgressBox.replaceChildren(table(headers, current.map((c) => liveRow(c, targets)),
      { test: "in-progress", empty: "No calls in progress." }));
    recentBox.replaceChildren(table(headers, recent.map((c) => liveRow(c, targets)),
      { test: "recent", empty: "No finished calls yet." }));
  };
  draw();
  return followLive({
    onSnapshot(snapshot) {
      inProgress.clear();
      for (const c of snapshot.in_progress) inProgress.set(c.id, c);
      // Newest first; a call reported finished more than once is shown once, as last reported.
      const seen = new Set();
      recent = snapshot.recent.filter((c) => !seen.has(c.id) && seen.add(c.id)).slice(0, 20);
      draw();
    },
    onCall(call) {
      if (call.outcome === "in_progress") {
        inProgress.set(call.id, call);
      } else {
        inProgress.delete(call.id);
        recent = [call, ...recent.filter((c) => c.id !== call.id)].slice(0, 20);
      }
      draw();
    },
    onStatus(s, detail) {
      status.textContent = s === "live" ? "live" : s === "reconnecting" ? "reconnecting…" : `error: ${detail}`;
      status.dataset.state = s;
    },
  });
}

// ------------------------------------------------------------------------------------- calls

const OUTCOMES = ["answered", "in_progress", "busy", "no_answer", "failed", "abandoned", "rejected", "interrupted"];
const PER_SCREEN = 50;

function callsForm(params, campaigns, targets) {
  const v = (k) => params.get(k) || "";
  const select = (name, label, options) => h("label", {}, label,
    h("select", { name }, h("option", { value: "" }, "any"),
      options.map(([value, text]) => h("option", { value, selected: String(value) === v(name) }, text))));
  const form = h("form", { class: "filters", method: "post", action: "#", "data-test": "call-filters" },
    h("label", {}, "Caller", h("input", { name: "caller", type: "search", value: v("caller"), placeholder: "+14155550123" })),
    h("label", {}, "Tracking number", h("input", { name: "tracking_number", type: "search", value: v("tracking_number") })),
    select("outcome", "Outcome", OUTCOMES.map((o) => [o, o.replace(/_/g, " ")])),
    select("campaign_id", "Campaign", campaigns.map((c) => [c.id, c.name])),
    select("target_id", "Target", targets.map((t) => [t.id, t.name])),
    h("label", {}, "From", h("input", { type: "date", name: "from", value: v("from") })),
    h("label", {}, "To", h("input", { type: "date", name: "to", value: v("to") })),
    h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, val] of new FormData(form)) if (String(val).trim()) q.set(k, String(val).trim());
    location.hash = `#/calls?${q}`;
  });
  return form;
}

async function calls(el, ctx) {
  if (ctx.id) return callDetail(el, ctx);
  const { params, signal } = ctx;
  const [campaigns, targets] = await Promise.all([
    all("/v1/campaigns", {}, signal, 500), all("/v1/targets", {}, signal, 500),
  ]);
  const names = new Map(targets.items.map((t) => [t.id, t.name]));
  el.append(h("h1", {}, "Calls"), callsForm(params, campaigns.items, targets.items));
  // Dates are local days of this browser; the API takes instants.
  const instant = (d, plus = 0) => (validDate(d) ? new Date(`${addDays(d, plus)}T00:00:00`).toISOString() : undefined);
  const filter = {
    caller: params.get("caller"), tracking_number: params.get("tracking_number"),
    outcome: params.get("outcome"), campaign_id: params.get("campaign_id"), target_id: params.get("target_id"),
    from: instant(params.get("from")), to: instant(params.get("to"), 1),
  };
  const found = await all("/v1/calls", { ...filter, order: "newest" }, signal, 2500);
  const newest = found.items;
  const count = h("p", { class: "muted", "data-test": "call-count" },
    found.more ? `The latest ${n(newest.length)} matching calls, newest first: narrow the dates to see earlier ones.`
      : `${n(newest.length)} calls, newest first.`);
  const csv = h("button", { type: "button", class: "secondary", "data-test": "export-calls" }, "Download CSV");
  csv.addEventListener("click", async () => {
    csv.disabled = true;
    try {
      await download("/v1/calls/export", { ...filter, order: "newest" }, "callopt-calls.csv");
    } catch (e) {
      csv.after(h("p", { class: "warning", role: "alert" }, `The export failed: ${e.message}`));
    } finally {
      csv.disabled = false;
    }
  });
  const box = h("div");
  let shown = PER_SCREEN;
  const more = h("button", { type: "button", class: "secondary" }, "Show more");
  const draw = () => {
    const rows = newest.slice(0, shown).map((c) => {
      const last = c.attempts[c.attempts.length - 1];
      return h("tr", { "data-call-id": c.id },
        h("td", {}, callLink(c, when(c.started_at))),
        h("td", {}, c.caller), h("td", {}, c.tracking_number),
        h("td", {}, last ? (names.get(last.target_id) || last.destination) : DASH),
        h("td", {}, outcomeBadge(c.outcome)), h("td", { class: "num" }, duration(c.talk_secs)),
        h("td", {}, c.session_id ? "yes" : "no"));
    });
    box.replaceChildren(table(["Started", "Caller", "Tracking number", "Target", "Outcome", "Talk", "Attributed"],
      rows, { test: "calls", empty: "No calls match." }));
    more.hidden = shown >= newest.length;
  };
  more.addEventListener("click", () => { shown += PER_SCREEN; draw(); });
  draw();
  el.append(h("div", { class: "row" }, count, csv), box, more);
}

function facts(pairs, test) {
  return h("dl", { class: "facts", "data-test": test },
    pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? DASH)]));
}

async function callDetail(el, { id, signal }) {
  const [call, targets] = await Promise.all([
    get(`/v1/calls/${encodeURIComponent(id)}`, {}, { signal }),
    all("/v1/targets", {}, signal, 500),
  ]);
  const names = new Map(targets.items.map((t) => [t.id, t.name]));
  const a = call.attribution;
  const attempts = call.attempts.map((t) => h("tr", { "data-seq": t.seq },
    h("td", { class: "num" }, t.seq),
    h("td", {}, t.target_id === null ? "(deleted)" : names.get(t.target_id) || `#${t.target_id}`),
    h("td", {}, t.destination),
    h("td", {}, outcomeBadge(t.outcome)),
    h("td", { class: "num" }, t.sip_status ?? DASH),
    h("td", { class: "num" }, t.ring_ms === null ? DASH : `${Math.max(0, t.ring_ms / 1000).toFixed(1)} s`),
    h("td", { class: "num" }, t.talk_ms === null ? DASH : duration(t.talk_ms / 1000)),
    h("td", {}, when(t.started_at))));
  el.append(
    h("p", {}, h("a", { href: "#/calls" }, "← Calls")),
    h("h1", {}, `Call from ${call.caller || "(unknown)"}`),
    section("Call", facts([
      ["Outcome", outcomeBadge(call.outcome)], ["Reason", call.reason], ["Tracking number", call.tracking_number],
      ["Channel", call.channel], ["Started", when(call.started_at)], ["Answered", when(call.answered_at)],
      ["Ended", when(call.ended_at)], ["Ring time", duration(call.ring_secs)], ["Talk time", duration(call.talk_secs)],
      ["Hung up by", call.hung_up_by],
      ["Conversion", call.conversion ? `${call.conversion.value ?? ""} ${call.conversion.currency ?? ""}`.trim() || "yes" : undefined],
    ], "call-facts")),
    section("Attribution", a ? facts([
      ["Landing page", a.landing_url], ["Referrer", a.referrer], ["utm_source", a.utm_source],
      ["utm_medium", a.utm_medium], ["utm_campaign", a.utm_campaign], ["utm_term", a.utm_term],
      ["utm_content", a.utm_content], ["gclid", a.gclid], ["fbclid", a.fbclid], ["msclkid", a.msclkid],
      ["Country", a.country], ["Language", a.language],
    ], "attribution") : h("p", { class: "muted", "data-test": "attribution" },
      "Not attributed: no visitor session held this number when the call came.")),
    section(`Routing attempts (${call.attempts.length})`,
      table(["#", "Target", "Destination", "Outcome", "SIP status", "Ring", "Talk", "Sent"], attempts,
        { test: "attempts", empty: "No target was tried." })));
}

// ------------------------------------------------------------------------------------- pools

async function pools(el, { signal }) {
  const { items, more } = await all("/v1/pools/utilisation", {}, signal, 2000);
  const warned = items.filter((p) => p.near_exhaustion);
  append(el, [h("h1", {}, "Pool utilisation"),
    warned.length ? h("p", { class: "warning", role: "alert", "data-test": "exhaustion-warning" },
      `${warned.map((p) => p.name).join(", ")}: 90% or more of the numbers are in use. New visitors may get the `
      + "default number, and their calls cannot be attributed: add numbers to the pool.") : null,
    section("Numbers leased to visitors now", table(["Pool", "In use", "Size", "Utilisation", ""],
      items.map((p) => h("tr", { "data-pool-id": p.pool_id, class: p.near_exhaustion ? "hot" : null },
        h("td", {}, p.name, p.near_exhaustion ? h("span", { class: "badge outcome-failed" }, "near exhaustion") : null),
        h("td", { class: "num" }, n(p.in_use)), h("td", { class: "num" }, n(p.size)),
        h("td", { class: "num" }, pct(p.utilisation)),
        h("td", {}, h("meter", { min: 0, max: 1, value: p.utilisation, low: 0.6, high: 0.9, optimum: 0,
          "aria-label": `${p.name} utilisation` })))),
      { test: "pools", empty: "No pools." })),
    more ? h("p", { class: "muted" }, "More pools than shown.") : null]);
}

// ------------------------------------------------------------------------------------- guard

async function guard(el, { signal }) {
  const [domains, refusals, quarantines, scans, reports, campaigns] = await Promise.all([
    all("/v1/domains", {}, signal, 500),
    get("/v1/dni/refusals", { limit: 100 }, { signal }),
    all("/v1/guard/quarantines", {}, signal, 1000),
    all("/v1/guard/scans", {}, signal, 2000),
    all("/v1/guard/abuse-reports", {}, signal, 1000),
    all("/v1/campaigns", {}, signal, 500),
  ]);
  const campaignName = new Map(campaigns.items.map((c) => [c.id, c.name]));
  const of = (q) => {
    if (q.campaign_id === null) return `number #${q.number_id}`;
    const campaign = `campaign ${campaignName.get(q.campaign_id) ?? `#${q.campaign_id}`}`;
    return q.url_pattern ? `pages ${q.url_pattern} of ${campaign}` : campaign;
  };
  const active = quarantines.items.filter((q) => q.status === "active");
  const newest = (items, max) => items.slice(-max).reverse();
  append(el, [h("h1", {}, "Guard"),
    h("p", { class: "muted" }, "Numbers are served only to pages on domains the account has proved it owns; "
      + "each new page a campaign's tag runs on is scanned for scam behaviour, and a scam verdict quarantines the campaign."),
    active.length ? h("p", { class: "warning", role: "alert", "data-test": "quarantine-warning" },
      `${active.map(of).join(", ")}: quarantined, no numbers are served. Review the scan, then lift it with `
      + "POST /v1/guard/quarantines/{id}/lift.") : null,
    section("Quarantines", table(["Since", "What", "Reason", "Status"],
      newest(quarantines.items, 100).map((q) => h("tr", { "data-quarantine-id": q.id, class: q.status === "active" ? "hot" : null },
        h("td", {}, when(q.created_at)), h("td", {}, of(q)), h("td", {}, q.reason),
        h("td", {}, q.status === "active" ? h("span", { class: "badge outcome-failed" }, "active")
          : `lifted ${when(q.lifted_at)}`))),
      { test: "quarantines", empty: "No quarantines." })),
    section("Page scans", table(["Queued", "Page", "Campaign", "Status", "Verdict", "Score", "Rule"],
      newest(scans.items, 100).map((sc) => h("tr", { "data-scan-id": sc.id },
        h("td", {}, when(sc.created_at)), h("td", { class: "key" }, sc.url),
        h("td", {}, sc.campaign_id === null ? DASH : campaignName.get(sc.campaign_id) ?? `#${sc.campaign_id}`),
        h("td", {}, sc.status), h("td", {}, sc.verdict ? h("span", { class: `badge verdict-${sc.verdict}` }, sc.verdict) : DASH),
        h("td", { class: "num" }, sc.score ?? DASH), h("td", {}, sc.rule ?? sc.error ?? DASH))),
      { test: "scans", empty: "No pages scanned yet." })),
    section("Abuse reports", table(["When", "Number", "Page", "Reference"],
      newest(reports.items, 100).map((r) => h("tr", {}, h("td", {}, when(r.at)),
        h("td", {}, r.number ?? DASH), h("td", { class: "key" }, r.page_url ?? DASH), h("td", {}, r.reference ?? DASH))),
      { test: "abuse-reports", empty: "No abuse reports." })),
    section("Domains", table(["Host", "Verified"], domains.items.map((d) => h("tr", {},
      h("td", {}, d.host), h("td", {}, d.verified ? `yes, ${when(d.verified_at)}` : "no"))),
    { test: "domains", empty: "No domains." })),
    section("Refused requests for numbers", table(["When", "Reason", "Origin", "Page"],
      refusals.items.map((r) => h("tr", {}, h("td", {}, when(r.at)), h("td", {}, r.reason.replace(/_/g, " ")),
        h("td", {}, r.origin ?? DASH), h("td", { class: "key" }, r.page_url ?? DASH))),
      { test: "refusals", empty: "No refused requests." }))]);
}

export const views = { overview, live, calls, pools, guard };
