/*! Callopt DNI tag 1.0.0 | open source | shows each visitor a tracking number */
// Loaded as <script src=".../dni.js" data-campaign="cmp_..." async>. It asks
// the script's own origin for a number and writes it into the page. Any failure
// leaves the page untouched: no exception escapes, nothing is logged.
(function () {
  "use strict";
  var VERSION = "1.0.0";
  // Must be read synchronously: currentScript is null once we return.
  var me = document.currentScript ||
    document.querySelector('script[data-campaign][src*="dni.js"]');
  var w = window;

  // Loaded twice: keep the first instance.
  if (w.callopt && w.callopt.version) return;

  // --- callback API ---------------------------------------------------------
  var queued = Array.isArray(w.callopt) ? w.callopt : [];
  var callbacks = [];
  var current = null; // {number, display, session, attributed} once known

  function detail() {
    return { number: current.number, display: current.display,
      session: current.session, attributed: current.attributed };
  }
  function call(cb) {
    try { cb(detail()); } catch (e) { /* a page callback must not break us */ }
  }
  function onNumber(cb) {
    if (typeof cb !== "function") return;
    callbacks.push(cb);
    if (current) call(cb);
  }
  function announce() {
    callbacks.forEach(call);
    try {
      document.dispatchEvent(new CustomEvent("callopt:number", { detail: detail() }));
    } catch (e) { /* ignore */ }
  }
  // push() keeps working for pages that use the pre-load queue idiom.
  w.callopt = { version: VERSION, onNumber: onNumber,
    push: function () { [].forEach.call(arguments, onNumber); } };
  queued.forEach(onNumber);

  var campaign = me && me.getAttribute("data-campaign");
  if (!campaign || !w.fetch) return;

  // --- visitor id -----------------------------------------------------------
  var VID = "callopt_vid";
  var VID_OK = /^[A-Za-z0-9_-]{22,64}$/;

  function newId() {
    var abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    var b = crypto.getRandomValues(new Uint8Array(24)), s = "";
    for (var i = 0; i < b.length; i++) s += abc[b[i] & 63]; // 256 % 64 == 0: unbiased
    return s;
  }
  function readCookie() {
    var m = document.cookie.match(/(?:^|;\s*)callopt_vid=([^;]*)/);
    return m ? m[1] : null;
  }
  function visitorId() {
    var id = null, ls = null;
    try { ls = w.localStorage; id = ls.getItem(VID); } catch (e) { ls = null; }
    if (!VID_OK.test(id || "")) id = readCookie();
    if (!VID_OK.test(id || "")) id = newId();
    try { ls.setItem(VID, id); } catch (e) {
      // No localStorage: a first-party cookie for a year.
      document.cookie = VID + "=" + id + "; Max-Age=31536000; Path=/; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
    }
    return id;
  }

  // --- talking to the server ------------------------------------------------
  function start() {
    var base = new URL(me.src, location.href).origin;
    var t = parseInt(me.getAttribute("data-timeout"), 10);
    var timeout = t > 0 ? t : 2000;
    var body = JSON.stringify({ campaign: campaign, visitor: visitorId(),
      page_url: location.href, referrer: document.referrer || null });
    var url = base + "/v1/dni/sessions";
    var due = false, timer = 0, every = 0;

    function post() {
      var ctl = w.AbortController ? new AbortController() : null;
      var stop = ctl && setTimeout(function () { ctl.abort(); }, timeout);
      // text/plain keeps this a CORS simple request: no preflight.
      return fetch(url, { method: "POST", body: body, credentials: "omit",
        cache: "no-store", headers: { "Content-Type": "text/plain;charset=UTF-8" },
        signal: ctl ? ctl.signal : undefined })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (r) { clearTimeout(stop); return r; },
          function () { clearTimeout(stop); return null; });
    }

    // Renew the lease every renew_after_seconds while the page is visible.
    function schedule(r) {
      if (r && +r.renew_after_seconds > 0) every = Math.max(+r.renew_after_seconds, 10);
      clearTimeout(timer);
      if (every) timer = setTimeout(function () { due = true; renew(); }, every * 1000);
    }
    function renew() {
      if (!due || document.visibilityState !== "visible") return;
      due = false;
      post().then(function (r) {
        try { r = r && r.swap === true && use(r) ? r : null; } catch (e) { r = null; }
        schedule(r); // a failed renewal is retried after the same interval
      });
    }
    document.addEventListener("visibilitychange", renew);

    post().then(function (r) {
      try { if (r && r.swap === true && use(r)) schedule(r); } catch (e) { /* ignore */ }
    });
  }

  // Takes a 200 answer; returns false (and changes nothing) if malformed.
  function use(r) {
    if (typeof r.number !== "string" || !/^\+[1-9]\d{5,14}$/.test(r.number) ||
      typeof r.display !== "string" || !r.display || !Array.isArray(r.replace)) return false;
    if (current && current.number === r.number) return true; // renewed, same number
    var old = r.replace.slice();
    // A renewal that moved us to a new number must also replace the previous one.
    if (current) old.push(byCc(current.number, r.replace));
    current = { number: r.number, display: r.display,
      session: typeof r.session === "string" ? r.session : null,
      attributed: r.attributed === true, forms: forms(old) };
    swapAll();
    announce();
    return true;
  }

  // --- matching printed numbers ---------------------------------------------
  function byCc(e164, list) {
    var cc = ((list[0] || {}).cc || "") + "";
    return e164.indexOf("+" + cc) === 0 && cc
      ? { e164: e164, cc: cc, nsn: e164.slice(1 + cc.length) } : { e164: e164 };
  }
  // Every digit string under which a replaced number may be printed.
  function forms(list) {
    var set = Object.create(null);
    list.forEach(function (n) {
      if (!n) return;
      var e = String(n.e164 || "").replace(/\D/g, ""), cc = String(n.cc || ""),
        nsn = String(n.nsn || "");
      if (e.length > 5) set[e] = 1;
      if (!/^\d{1,3}$/.test(cc) || !/^\d{4,}$/.test(nsn)) return;
      [cc + nsn, "00" + cc + nsn, "011" + cc + nsn, nsn,
        (cc === "1" ? "1" : "0") + nsn, cc + "0" + nsn, "00" + cc + "0" + nsn]
        .forEach(function (f) { set[f] = 1; });
    });
    return set;
  }
  function isOld(digits) {
    return current.forms[digits] === 1;
  }

  var RUN = /\+?\(?\d[\d\s().\-\/]{4,}\d/g;
  // Returns s with each replaced number swapped for display, or null if none.
  function swapText(s) {
    var out = "", pos = 0, m, hit = false;
    RUN.lastIndex = 0;
    while ((m = RUN.exec(s))) {
      var run = m[0], g = [], d, re = /\d+/g;
      while ((d = re.exec(run))) g.push(d);
      // Try digit groups i..j (longest first), so "24/7 415-555-0100" still matches.
      for (var i = 0; i < g.length; i++) {
        for (var j = Math.min(g.length - 1, i + 6); j >= i; j--) {
          var digits = "";
          for (var k = i; k <= j; k++) digits += g[k][0];
          if (digits.length > 17 || !isOld(digits)) continue;
          var a = g[i].index, b = g[j].index + g[j][0].length;
          if (run[a - 1] === "(") a--;
          if (run[a - 1] === "+") a--;
          out += s.slice(pos, m.index + a) + current.display;
          pos = m.index + b;
          hit = true;
          i = j;
          break;
        }
      }
    }
    return hit ? out + s.slice(pos) : null;
  }

  var SKIP = "script,style,textarea,input,select,noscript,template,[data-callopt-number]";
  function skipped(el) {
    return !el || el.isContentEditable || !!el.closest(SKIP);
  }
  function swapNode(t) {
    if (skipped(t.parentElement)) return;
    var v = swapText(t.nodeValue);
    if (v !== null) t.nodeValue = v;
  }
  function all(root, sel) {
    var l = [].slice.call(root.querySelectorAll(sel));
    if (root.matches(sel)) l.push(root);
    return l;
  }
  function swapTree(root) {
    if (root.nodeType === 3) return swapNode(root);
    if (root.nodeType !== 1) return;
    var walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT), t, texts = [];
    while ((t = walk.nextNode())) texts.push(t);
    texts.forEach(swapNode);
    var tel = "tel:" + current.number;
    all(root, "a[href]").forEach(function (a) {
      var h = a.getAttribute("href");
      if (!/^tel:/i.test(h) || skipped(a)) return;
      h = h.slice(4).split(/[;?]/)[0];
      try { h = decodeURIComponent(h); } catch (e) { /* keep raw */ }
      if (isOld(h.replace(/\D/g, ""))) a.setAttribute("href", tel);
    });
    all(root, "[data-callopt-number]").forEach(function (el) {
      if (el.textContent !== current.display) el.textContent = current.display;
      if (el.tagName === "A" && el.getAttribute("href") !== tel) el.setAttribute("href", tel);
    });
  }

  // --- the whole document, now and on every later change --------------------
  var observer = null;
  var OPTS = { childList: true, subtree: true, characterData: true,
    attributes: true, attributeFilter: ["href", "data-callopt-number"] };

  // Our own writes happen while the observer is disconnected: no feedback loop.
  function quietly(fn) {
    if (observer) observer.disconnect();
    try { fn(); } catch (e) { /* ignore */ }
    if (observer) observer.observe(document.documentElement, OPTS);
  }
  function swapAll() {
    quietly(function () { swapTree(document.documentElement); });
    if (!observer && w.MutationObserver) {
      observer = new MutationObserver(function (records) {
        quietly(function () {
          records.forEach(function (rec) {
            var t = rec.target, el = t.nodeType === 1 ? t : t.parentElement;
            var nodes = rec.type === "childList" ? [].slice.call(rec.addedNodes) : [t];
            // An app rewrote the inside of a data-callopt-number element: redo it.
            el = el && el.closest("[data-callopt-number]");
            if (el) nodes.push(el);
            nodes.forEach(function (n) { if (n.isConnected) swapTree(n); });
          });
        });
      });
      observer.observe(document.documentElement, OPTS);
    }
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", function () {
        quietly(function () { swapTree(document.documentElement); });
      });
    }
  }

  try { start(); } catch (e) { /* the page keeps its own number */ }
})();
