// Pieces shared by the deployments and work pools pages.
import { h } from "./core.js";

export function deploymentPath(d) {
  return `${encodeURIComponent(d.flow_name)}/${encodeURIComponent(d.name)}`;
}

export function deploymentHref(d) { return `/deployments/${deploymentPath(d)}`; }

export function statusPill(paused) {
  return h("span", { class: `pill ${paused ? "paused" : "ready"}` }, paused ? "paused" : "ready");
}

export function scheduleList(texts) {
  if (!texts.length) return h("span", { class: "note" }, "no schedule (runs only when triggered)");
  return h("ul", { class: "schedules" }, texts.map((s) => h("li", { class: "schedule" }, s.text, s.active === false ? " (inactive)" : "")));
}
