import { FINAL, STATES, api, badge, duration, fill, h, number, poll, runDuration, runLink, tags, time, url } from "./core.js";

const SPANS = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
const PAGE = 50;
const form = document.getElementById("filters");
const selected = new Set();
let filters = readFilters(new URLSearchParams(location.search));
let offset = Number(new URLSearchParams(location.search).get("offset")) || 0;
let total = 0;
let shownRuns = [];

function readFilters(params) {
  return {
    flow_name: params.get("flow_name") || params.get("flow") || "",
    state: params.get("state") || "",
    tag: params.get("tag") || "",
    range: SPANS[params.get("range")] ? params.get("range") : "",
  };
}

function query() {
  // The window start moves with time; rounding it to the minute keeps the URL (and
  // so the ETag the browser holds) stable between polls.
  const span = SPANS[filters.range];
  const after = span ? new Date((Math.floor(Date.now() / 60000) * 60 - span) * 1000).toISOString() : "";
  return url("/api/ui/flow_runs", {
    flow_name: filters.flow_name, state: filters.state, tag: filters.tag, started_after: after, limit: PAGE, offset,
  });
}

function row(run) {
  const box = h("input", { type: "checkbox", class: "pick", "aria-label": `Select ${run.name}`, disabled: FINAL.has(run.state_type) });
  box.checked = selected.has(run.id);
  box.addEventListener("change", () => { box.checked ? selected.add(run.id) : selected.delete(run.id); updateBulk(); });
  return h("tr", { "data-id": run.id, "data-state": run.state_type },
    h("td", {}, box),
    h("td", {}, badge(run.state_type, run.state_name)),
    h("td", {}, runLink(run), run.parent_flow_run_id ? h("span", { class: "mark", title: "a subflow run" }, "subflow") : null),
    h("td", {}, h("a", { href: url("/runs", { flow_name: run.flow_name }) }, run.flow_name)),
    h("td", {}, time(run.start_time)),
    h("td", {}, duration(runDuration(run))),
    h("td", {}, tags(run.tags)),
    h("td", {}, String(run.run_count)));
}

function updateBulk() {
  document.getElementById("bulk-cancel").disabled = selected.size === 0;
  document.getElementById("bulk-cancel").textContent = selected.size ? `Cancel selected (${selected.size})` : "Cancel selected";
}

async function refresh() {
  const { data, changed } = await api(query(), { view: "runs" });
  const running = data.runs.some((run) => !FINAL.has(run.state_type));
  // Durations of running runs tick even when the data did not change.
  if (!changed && !running) return;
  total = data.total;
  shownRuns = data.runs;
  const body = document.querySelector("#runs tbody");
  body.replaceChildren(...(data.runs.length ? data.runs.map(row) : [h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No flow runs match these filters."))]));
  const first = data.runs.length ? offset + 1 : 0;
  document.getElementById("page-info").textContent = `${number(first)}–${number(offset + data.runs.length)} of ${number(total)}`;
  document.getElementById("prev").disabled = offset === 0;
  document.getElementById("next").disabled = offset + PAGE >= total;
}

async function loadFlowNames() {
  const { data } = await api("/api/flows?limit=1000");
  const select = document.getElementById("f-flow");
  for (const flow of data) select.append(h("option", { value: flow.name }, flow.name));
  select.value = filters.flow_name;
}

function syncUrl() {
  const params = { ...filters, offset: offset || "" };
  history.replaceState(null, "", url("/runs", params));
}

for (const state of STATES) document.getElementById("f-state").append(h("option", { value: state }, state.toLowerCase()));
document.getElementById("f-state").value = filters.state;
document.getElementById("f-tag").value = filters.tag;
document.getElementById("f-range").value = filters.range;
const poller = poll(refresh, 2000);
loadFlowNames().catch(() => {});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  filters = readFilters(new URLSearchParams(new FormData(form)));
  offset = 0;
  selected.clear(); updateBulk(); syncUrl(); poller.now();
});
for (const control of form.querySelectorAll("select")) control.addEventListener("change", () => form.requestSubmit());
document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); syncUrl(); poller.now(); });
document.getElementById("next").addEventListener("click", () => { offset += PAGE; syncUrl(); poller.now(); });
document.getElementById("select-all").addEventListener("change", (event) => {
  for (const run of shownRuns) if (!FINAL.has(run.state_type)) event.target.checked ? selected.add(run.id) : selected.delete(run.id);
  for (const box of document.querySelectorAll("#runs .pick:not(:disabled)")) box.checked = event.target.checked;
  updateBulk();
});
document.getElementById("bulk-cancel").addEventListener("click", async () => {
  const ids = [...selected];
  const results = await Promise.allSettled(ids.map((id) => api(`/api/flow_runs/${encodeURIComponent(id)}/cancel`, { method: "POST" })));
  const refused = results.filter((r) => r.status === "rejected");
  document.getElementById("bulk-result").textContent =
    `Cancellation asked for ${ids.length - refused.length} run(s)` + (refused.length ? `; ${refused.length} refused: ${refused[0].reason.message}` : "");
  selected.clear(); updateBulk(); poller.now();
});
