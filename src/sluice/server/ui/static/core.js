// Shared by every page: API calls (key, ETags), polling, and DOM building that
// only ever puts user data into text nodes and attribute values (never HTML).

const KEY_STORAGE = "sluice.apiKey";
const SVG_NS = "http://www.w3.org/2000/svg";
const etags = new Map(); // url -> {etag, data}: answers the browser already holds
const MAX_CACHED = 64;

export class AuthNeeded extends Error {}
export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

let keyWaiters = [];

function askForKey(refused) {
  const panel = document.getElementById("auth");
  panel.hidden = false;
  document.getElementById("auth-error").hidden = !refused;
  document.getElementById("auth-key").focus();
  return new Promise((resolve) => keyWaiters.push(resolve));
}

function setupAuthForm() {
  const form = document.getElementById("auth-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = document.getElementById("auth-key").value.trim();
    if (!key) return;
    localStorage.setItem(KEY_STORAGE, key);
    document.getElementById("auth").hidden = true;
    document.getElementById("forget-key").hidden = false;
    const waiting = keyWaiters;
    keyWaiters = [];
    waiting.forEach((resolve) => resolve());
  });
  const forget = document.getElementById("forget-key");
  forget.hidden = !localStorage.getItem(KEY_STORAGE);
  forget.addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    location.reload();
  });
}

const shownPath = new Map(); // view -> the path whose answer that view last got

/**
 * Call the API. GETs send If-None-Match for answers already held; returns {data, changed}.
 * `changed` is false only when the answer is the one `view` (a part of the page, by default
 * the path itself) last received, so a view switching back to an earlier query redraws.
 */
export async function api(path, { method = "GET", body, view = path } = {}) {
  const previous = shownPath.get(view);
  shownPath.set(view, path);
  for (;;) {
    const headers = {};
    const key = localStorage.getItem(KEY_STORAGE);
    if (key) headers["Authorization"] = "Bearer " + key;
    const held = method === "GET" ? etags.get(path) : undefined;
    if (held) headers["If-None-Match"] = held.etag;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      await askForKey(Boolean(key));
      continue;
    }
    if (response.status === 304 && held) return { data: held.data, changed: previous !== path };
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const detail = data && data.detail !== undefined ? data.detail : response.statusText;
      const error = new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
      if (data && Array.isArray(data.fields)) error.fields = data.fields; // per-field problems (forms)
      throw error;
    }
    const etag = response.headers.get("ETag");
    if (method === "GET" && etag) {
      if (etags.size >= MAX_CACHED) etags.delete(etags.keys().next().value);
      etags.set(path, { etag, data });
    }
    return { data, changed: true };
  }
}

/** A URL with query parameters (arrays repeat the key; empty values are left out). */
export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") query.append(name, String(item));
    }
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Run `refresh` now and every `everyMs` (a number or a function giving one) while the
 * page is visible. Returns {now()} to refresh at once (e.g. after a filter change).
 */
export function poll(refresh, everyMs = 2000) {
  const live = document.getElementById("live");
  let timer = null;
  let busy = false;
  let again = false;
  async function tick() {
    clearTimeout(timer);
    if (busy) { again = true; return; }
    busy = true;
    try {
      if (!document.hidden) {
        await refresh();
        live.textContent = "live · " + new Date().toLocaleTimeString();
        live.classList.remove("error");
      }
    } catch (error) {
      live.textContent = "update failed: " + error.message;
      live.classList.add("error");
    } finally {
      busy = false;
    }
    const delay = again ? 0 : (typeof everyMs === "function" ? everyMs() : everyMs);
    again = false;
    timer = setTimeout(tick, delay);
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  tick();
  return { now: tick };
}

// -- DOM ---------------------------------------------------------------------------

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "text") element.textContent = String(value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element; string children become text nodes. */
export function h(tag, attrs, ...children) { return build(document.createElement(tag), attrs, children); }
/** An SVG element; string children become text nodes. */
export function s(tag, attrs, ...children) { return build(document.createElementNS(SVG_NS, tag), attrs, children); }

/** Replace the children of the element with id `id`. */
export function fill(id, ...children) {
  const element = typeof id === "string" ? document.getElementById(id) : id;
  element.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return element;
}

export const STATES = ["COMPLETED", "FAILED", "CRASHED", "RUNNING", "PENDING", "SCHEDULED", "CANCELLING", "CANCELLED", "PAUSED"];
export const FINAL = new Set(["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]);

export function stateColor(type) { return `var(--${STATES.includes(type) ? type : "PENDING"})`; }

export function badge(type, name) {
  return h("span", { class: "badge", style: `background:${stateColor(type)}`, title: type }, name || type);
}

export function time(epoch) {
  if (epoch === null || epoch === undefined) return "—";
  const date = new Date(epoch * 1000);
  return date.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} m ${Math.floor(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} m`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** How long a run took, or has been running (start to end, or to now). */
export function runDuration(run) {
  if (!run.start_time) return null;
  const end = run.end_time || Date.now() / 1000;
  return Math.max(0, end - run.start_time);
}

export function runLink(run) {
  return h("a", { href: `/runs/${encodeURIComponent(run.id)}` }, run.name);
}

export function taskLink(id, name) {
  return h("a", { href: `/task-runs/${encodeURIComponent(id)}` }, name);
}

export function tags(list) { return (list || []).map((tag) => h("span", { class: "tag" }, tag)); }

export function empty(text) { return h("div", { class: "empty" }, text); }

export function number(n) { return Number(n).toLocaleString(); }

/** Epoch seconds of an ISO-8601 time from the record API. */
export function epoch(iso) { return iso ? Date.parse(iso) / 1000 : null; }

/** Show a 404 from the API in the page's summary, then let the poller report it. */
export function notFound(error) {
  if (error instanceof ApiError && error.status === 404) fill("summary", h("p", { class: "error" }, error.message));
  throw error;
}

/** What can be shown of a stored result (see result_preview in ui_data.py). */
export function preview(result) {
  if (!result) return empty("No stored result.");
  if (result.kind === "json") return h("div", {}, h("pre", { class: "json result" }, result.text), result.truncated ? h("p", { class: "note" }, "(preview truncated)") : null);
  if (result.kind === "file") return empty(`Stored in result storage (${result.serializer}): ${result.path}`);
  if (result.kind === "inline") return empty(`Stored inline as ${result.serializer}; not previewed in the browser.`);
  return empty("Stored result in an unknown format.");
}

setupAuthForm();
