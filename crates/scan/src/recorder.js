// The dynamic scan's recorder: runs in every frame before the page's own scripts, wraps the
// browser-locking APIs and reports each call through a CDP binding (a native function, so a
// report gets out even while the page's thread spins in a loop). It never blocks: dialogs,
// window.open and print are answered at once instead of shown. __BINDING__ and __PROBE__ are
// replaced by names chosen afresh for every scan, so a page cannot know them in advance.
(() => {
  "use strict";
  const send = globalThis["__BINDING__"];
  if (typeof send !== "function") return;
  try { delete globalThis["__BINDING__"]; } catch (_) { /* the page still cannot guess it */ }
  const counts = Object.create(null);
  const started = performance.now();
  // The last trusted input and what it landed on: "control" (a button, link, form field, media
  // or canvas) or "page" (anything else).
  let input = null;
  const CONTROLS = ["BUTTON", "A", "INPUT", "SELECT", "TEXTAREA", "VIDEO", "CANVAS", "LABEL", "SUMMARY", "IFRAME"];
  const landedOn = (el) => {
    for (let e = el, depth = 0; e && e.tagName && depth < 4; e = e.parentElement, depth++) {
      if (CONTROLS.includes(e.tagName) || (e.getAttribute && e.getAttribute("role") === "button")) return "control";
    }
    return "page";
  };
  const activation = () => {
    try { return !!(navigator.userActivation && navigator.userActivation.isActive); } catch (_) { return false; }
  };
  const report = (api, extra) => {
    const n = (counts[api] = (counts[api] || 0) + 1);
    if (n > 50) return;  // enough to call it a loop; a flood of reports would only cost time
    const recent = input && performance.now() - input.at < 1500;
    try {
      send(JSON.stringify({
        api, n, gesture: activation(), on: recent ? input.on : null,
        ms: Math.round(performance.now() - started), extra: extra || null,
      }));
    } catch (_) { /* a binding gone with its frame */ }
  };
  for (const type of ["mousedown", "mouseup", "click", "pointerdown", "pointerup", "keydown", "keyup", "touchstart", "touchend", "contextmenu"]) {
    addEventListener(type, (e) => {
      if (!e.isTrusted) return;
      input = { on: landedOn(e.target), at: performance.now() };
      if (type === "keydown" || type === "contextmenu") {
        // After every handler ran: did the page cancel it?
        setTimeout(() => { if (e.defaultPrevented) report(type === "keydown" ? "key_blocked" : "contextmenu_blocked", e.key || null); }, 0);
      }
    }, true);
  }
  const wrap = (target, name, api, answer) => {
    try {
      const original = target && target[name];
      if (typeof original !== "function") return;
      const replacement = {
        [name](...args) {
          report(api, typeof args[0] === "string" ? args[0].slice(0, 80) : null);
          return answer ? answer.call(this, args) : original.apply(this, args);
        },
      }[name];
      Object.defineProperty(target, name, { value: replacement, writable: true, configurable: true });
    } catch (_) { /* a frozen prototype: nothing to record */ }
  };
  const element = Element.prototype;
  for (const name of ["requestFullscreen", "webkitRequestFullscreen", "webkitRequestFullScreen", "mozRequestFullScreen", "msRequestFullscreen"]) {
    wrap(element, name, "fullscreen");
  }
  wrap(element, "requestPointerLock", "pointer_lock");
  try { if (navigator.keyboard) wrap(Object.getPrototypeOf(navigator.keyboard), "lock", "keyboard_lock", () => Promise.resolve()); } catch (_) { /* no Keyboard API */ }
  wrap(globalThis, "alert", "dialog", () => undefined);
  wrap(globalThis, "confirm", "dialog", () => true);
  wrap(globalThis, "prompt", "dialog", () => null);
  wrap(globalThis, "open", "window_open", () => null);
  wrap(globalThis, "print", "print", () => undefined);
  wrap(History.prototype, "pushState", "push_state");
  wrap(console, "clear", "console_clear", () => undefined);
  wrap(HTMLAnchorElement.prototype, "click", "anchor_click", function (args) {
    if (this.hasAttribute("download") || /^blob:|^data:/i.test(this.href)) report("download");
    return HTMLElement.prototype.click.apply(this, args);
  });
  wrap(HTMLMediaElement.prototype, "play", "media_play", function () {
    if (this.loop) report("media_loop");
    return Promise.resolve();
  });
  // What the page left behind, read once at the end of the scan.
  Object.defineProperty(globalThis, "__PROBE__", {
    enumerable: false,
    value: () => {
      const cursor = (el) => { try { return el ? getComputedStyle(el).cursor : ""; } catch (_) { return ""; } };
      const mid = document.elementFromPoint(innerWidth / 2, innerHeight / 2);
      const native = (f) => { try { return /\[native code\]/.test(Function.prototype.toString.call(f)); } catch (_) { return true; } };
      return JSON.stringify({
        url: String(location.href),
        html: document.documentElement ? document.documentElement.outerHTML.slice(0, 2097152) : "",
        cursor_hidden: [document.documentElement, document.body, mid].some((el) => cursor(el) === "none"),
        console_replaced: ["log", "warn", "error", "info", "debug"].some((m) => !native(console[m])),
      });
    },
  });
  // A spot where a click lands on the page itself, not on one of its controls.
  Object.defineProperty(globalThis, "__PROBE___blank", {
    enumerable: false,
    value: () => {
      const w = innerWidth, h = innerHeight;
      for (const [x, y] of [[0.5, 0.5], [0.1, 0.1], [0.9, 0.9], [0.1, 0.9], [0.9, 0.1], [0.5, 0.95], [0.02, 0.5]]) {
        const el = document.elementFromPoint(w * x, h * y);
        if (!el || landedOn(el) === "page") return JSON.stringify([Math.round(w * x), Math.round(h * y)]);
      }
      return JSON.stringify([2, 2]);
    },
  });
})();
