import { FINAL, STATES, api, badge, duration, empty, epoch, fill, h, number, poll, preview, runDuration, runLink, tags, taskLink, time, url } from "./core.js";
import { notFound } from "./core.js";
import { gantt } from "./charts.js";
import { drawGraph } from "./graph.js";
import { logViewer } from "./logs.js";
import { resumeControls } from "./resume.js";

const runId = document.getElementById("app").dataset.id;
const base = `/api/ui/flow_runs/${encodeURIComponent(runId)}`;
const TASK_PAGE = 50;
let run = null;
let fullId = runId;
let tab = "tasks";
let taskOffset = 0;
let taskGroup = "";
const expanded = new Set();
let logs = null;
let shownTasks = null; // the rows of the task table, redrawn when resuming becomes (im)possible

function summaryItem(label, ...value) { return h("div", {}, h("span", {}, label), ...value); }

function renderHeader(detail) {
  run = detail.run;
  fullId = run.id;
  const start = epoch(run.start_time), end = epoch(run.end_time);
  document.title = `${run.name} · Sluice`;
  fill("title", `${run.flow_name} / ${run.name} `, badge(run.state_type, run.state_name));
  const counts = Object.entries(detail.task_counts);
  fill("summary",
    summaryItem("Flow run id", h("code", {}, run.id)),
    summaryItem("Started", time(start)),
    summaryItem("Duration", duration(runDuration({ start_time: start, end_time: end }))),
    summaryItem("Attempts", String(run.run_count)),
    summaryItem("Task runs", counts.length ? counts.map(([state, n]) => h("span", { class: "mark", style: "border-color:var(--" + state + ")" }, `${number(n)} ${state.toLowerCase()}`)) : "none yet"),
    run.tags.length ? summaryItem("Tags", tags(run.tags)) : null,
    detail.parent ? summaryItem("Parent flow run", runLink(detail.parent)) : null,
    run.state_message ? summaryItem("Message", run.state_message) : null);
  if (resume.render(run)) drawTaskRows();
  const cancel = document.getElementById("cancel");
  cancel.hidden = FINAL.has(run.state_type) || run.state_type === "CANCELLING";
  fill("parameters", JSON.stringify(run.parameters, null, 2));
  fill("result", preview(detail.result));
  document.querySelector("#states tbody").replaceChildren(...detail.states.map((state) =>
    h("tr", {}, h("td", {}, time(state.timestamp)), h("td", {}, badge(state.type, state.name)), h("td", { class: "msg" }, state.message || ""))));
  fill("children", detail.children.length
    ? h("table", { class: "grid" }, h("tbody", {}, detail.children.map((child) =>
        h("tr", {}, h("td", {}, badge(child.state_type, child.state_name)), h("td", {}, runLink(child)), h("td", {}, child.flow_name), h("td", {}, duration(runDuration(child)))))))
    : empty("This run started no subflow runs."));
}


function marks(task) {
  const out = [];
  if (task.state_name === "Cached") out.push(h("span", { class: "mark", title: "result taken from the cache" }, "Cached"));
  if (task.state_name === "Replayed") out.push(h("span", { class: "mark", title: "result replayed from an earlier attempt" }, "Replayed"));
  if (task.run_count > 1) out.push(h("span", { class: "mark", title: "retried" }, `retried ×${task.run_count - 1}`));
  return out;
}

function drawTaskRows() {
  if (!shownTasks) return;
  const body = document.querySelector("#task-runs tbody");
  body.replaceChildren(...(shownTasks.length ? shownTasks.map((task) => h("tr", { "data-id": task.id, "data-state": task.state_type },
    h("td", {}, badge(task.state_type, task.state_name)),
    h("td", {}, taskLink(task.id, task.name)),
    h("td", {}, task.map_index >= 0 ? String(task.map_index) : "—"),
    h("td", {}, time(task.start_time)),
    h("td", {}, duration(runDuration(task))),
    h("td", {}, String(task.run_count)),
    h("td", {}, marks(task)),
    h("td", { class: "resume-col" }, resume.rowAction(task)))) : [h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No task runs."))]));
}

async function refreshTasks() {
  const state = document.getElementById("task-state").value;
  const { data, changed } = await api(url(`${base}/task_runs`, { state, group: taskGroup, offset: taskOffset, limit: TASK_PAGE }), { view: "tasks" });
  const running = data.task_runs.some((t) => !FINAL.has(t.state_type));
  if (!changed && !running) return;
  shownTasks = data.task_runs;
  drawTaskRows();
  const first = data.task_runs.length ? taskOffset + 1 : 0;
  fill("task-info", `${number(first)}–${number(taskOffset + data.task_runs.length)} of ${number(data.total)}`);
  document.getElementById("task-prev").disabled = taskOffset === 0;
  document.getElementById("task-next").disabled = taskOffset + TASK_PAGE >= data.total;
  fill("task-group", taskGroup ? ["Showing one mapped call ", h("button", { type: "button", onclick: () => { taskGroup = ""; taskOffset = 0; refreshTasks(); } }, "show all")] : "");
}

function pickNode(node) {
  if (node.kind === "task" && node.task_run_id) { location.href = `/task-runs/${encodeURIComponent(node.task_run_id)}`; return; }
  if (node.kind === "map" && node.count <= 200) { expanded.add(node.key); refreshGraph(); return; }
  // Too many to draw one by one: list them in the task table instead.
  taskGroup = node.kind === "map" ? node.key : "";
  taskOffset = 0;
  location.hash = "#tasks";
}

async function refreshGraph() {
  const { data, changed } = await api(url(`${base}/graph`, { expand: [...expanded].sort() }), { view: "graph" });
  if (!changed) return;
  const note = `${number(data.task_run_count)} task runs as ${number(data.nodes.length)} nodes` +
    (data.folded ? "; separate calls are folded by task name (too many to draw one by one)" : "") +
    (expanded.size ? " · " : "");
  fill("graph-note", note, expanded.size ? h("button", { type: "button", onclick: () => { expanded.clear(); refreshGraph(); } }, "collapse mapped groups") : null);
  fill("graph", data.nodes.length ? drawGraph(data, pickNode) : empty("No task runs yet."));
}

async function refreshTimeline() {
  const { data } = await api(url(`${base}/graph`, { expand: [...expanded].sort() }), { view: "timeline" });
  const chart = gantt(data.nodes, pickNode);
  fill("timeline-note", data.folded || data.nodes.some((n) => n.kind !== "task") ? "Mapped calls (and folded task names) are one bar each, from their first start to their last end." : "");
  fill("timeline", chart || empty("No task run has started yet."));
}

async function refresh() {
  const { data, changed } = await api(base).catch(notFound);
  if (changed) renderHeader(data);
  const work = { tasks: refreshTasks, graph: refreshGraph, timeline: refreshTimeline, logs: () => logs.refresh(), details: () => null }[tab];
  await work();
}

function showTab(name) {
  tab = ["tasks", "graph", "timeline", "logs", "details"].includes(name) ? name : "tasks";
  for (const link of document.querySelectorAll("#tabs a")) link.classList.toggle("active", link.dataset.tab === tab);
  for (const section of document.querySelectorAll("section.tab")) section.hidden = section.id !== `tab-${tab}`;
}

for (const state of STATES) document.getElementById("task-state").append(h("option", { value: state }, state.toLowerCase()));
logs = logViewer(document.getElementById("logs"), runId);
showTab(location.hash.slice(1));
const resume = resumeControls(() => poller.now());
// Poll fast while the run moves, slowly once it is over (a resume can revive it).
const poller = poll(refresh, () => (run && FINAL.has(run.state_type) ? 10000 : 2000));
window.addEventListener("hashchange", () => { showTab(location.hash.slice(1)); poller.now(); });
document.getElementById("task-state").addEventListener("change", () => { taskOffset = 0; poller.now(); });
document.getElementById("task-prev").addEventListener("click", () => { taskOffset = Math.max(0, taskOffset - TASK_PAGE); poller.now(); });
document.getElementById("task-next").addEventListener("click", () => { taskOffset += TASK_PAGE; poller.now(); });

const cancel = document.getElementById("cancel");
let armed = null;
cancel.addEventListener("click", async () => {
  // Two clicks: the first arms the button for a few seconds (no modal dialogs).
  if (!armed) {
    cancel.textContent = "Confirm cancel";
    cancel.classList.add("danger");
    armed = setTimeout(() => { armed = null; cancel.textContent = "Cancel run"; cancel.classList.remove("danger"); }, 4000);
    return;
  }
  clearTimeout(armed); armed = null;
  cancel.textContent = "Cancel run"; cancel.classList.remove("danger");
  try {
    const { data } = await api(`/api/flow_runs/${encodeURIComponent(fullId)}/cancel`, { method: "POST" });
    fill("action-result", `Cancellation requested: the run is ${data.state_name.toLowerCase()}.`);
  } catch (error) {
    fill("action-result", h("span", { class: "error" }, `Cancel refused: ${error.message}`));
  }
  poller.now();
});

api("/api/ui/features").then(({ data }) => { if (resume.setFeatures(data)) drawTaskRows(); }).catch(() => {});
