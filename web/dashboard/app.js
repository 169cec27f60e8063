// The dashboard's shell: sign-in and sign-out, the navigation, and the hash router that shows
// one page at a time (the hash never reaches the server, and never holds the API key).
import { apiKey, signIn, signOut, checkKey, whenUnauthorised } from "./api.js";
import { h, views } from "./views.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const menu = document.getElementById("menu");

/** The page shown now: its cleanup (stops streams) and an abort signal for its requests. */
let current = { stop: () => {}, abort: new AbortController() };

/** `#/calls/12?outcome=answered` → { page: "calls", id: "12", params: URLSearchParams }. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const [page = "overview", id] = path.split("/").filter(Boolean);
  return { page: page || "overview", id, params: new URLSearchParams(query) };
}

function leave() {
  current.abort.abort();
  try {
    current.stop();
  } catch {
    // A page's cleanup failing must not keep the next page from showing.
  }
  current = { stop: () => {}, abort: new AbortController() };
}

function showSignIn(message) {
  leave();
  nav.hidden = true;
  menu.hidden = true;
  document.body.dataset.page = "sign-in";
  const key = h("input", {
    id: "api-key", name: "api-key", type: "password", autocomplete: "current-password",
    required: true, placeholder: "API key", spellcheck: "false",
  });
  const error = h("p", { class: "error", role: "alert", id: "sign-in-error" }, message || "");
  const submit = h("button", { type: "submit" }, "Sign in");
  // POST, never GET: were the script to fail, the key must not land in a URL.
  const form = h("form", { class: "sign-in", method: "post", action: "#" },
    h("h1", {}, "Sign in"),
    h("p", {}, "Your account's API key. It stays in this browser tab until you sign out or close it."),
    h("label", { for: "api-key" }, "API key"), key, submit, error);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = key.value.trim();
    if (!value) return;
    submit.disabled = true;
    error.textContent = "";
    try {
      await checkKey(value);
      signIn(value);
      key.value = "";
      route();
    } catch (err) {
      error.textContent = err.status === 401 ? "That API key is not valid." : `Could not sign in: ${err.message}`;
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(form);
  key.focus();
}

async function route() {
  if (!apiKey()) return showSignIn();
  leave();
  nav.hidden = false;
  menu.hidden = false;
  nav.classList.remove("open");
  menu.setAttribute("aria-expanded", "false");
  const { page, id, params } = parseHash();
  const view = views[page] || views.overview;
  const name = views[page] ? page : "overview";
  document.body.dataset.page = name + (id ? "-detail" : "");
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const mine = current;
  const container = h("div", { class: "page", "aria-busy": "true" });
  main.replaceChildren(container);
  try {
    const stop = await view(container, { id, params, signal: mine.abort.signal });
    if (mine !== current) {
      if (typeof stop === "function") stop();
      return;
    }
    if (typeof stop === "function") mine.stop = stop;
  } catch (e) {
    if (mine.abort.signal.aborted) return;
    container.replaceChildren(h("p", { class: "error", role: "alert" }, `Could not load this page: ${e.message}`));
  } finally {
    container.removeAttribute("aria-busy");
  }
}

whenUnauthorised(() => {
  signOut();
  showSignIn("The API key was refused; sign in again.");
});

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  showSignIn("Signed out.");
});

menu.addEventListener("click", () => {
  const open = nav.classList.toggle("open");
  menu.setAttribute("aria-expanded", String(open));
});

window.addEventListener("hashchange", route);
route();
