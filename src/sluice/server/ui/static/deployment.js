import { ApiError, api, badge, empty, epoch, fill, h, notFound, poll, runLink, tags, time } from "./core.js";
import { scheduleList, statusPill } from "./deploy_common.js";
import { parameterForm } from "./param_form.js";
import { scheduleEditor } from "./schedule_editor.js";

// The page id is FLOW/NAME, each part URL-encoded (routes.py).
const path = document.getElementById("app").dataset.id;
const base = `/api/deployments/${path}`;
let deployment = null;
let form = null;
let formKey = null;

function runTable(runs, text, when) {
  if (!runs.length) return empty(text);
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, h("th", {}, "State"), h("th", {}, "Run"), h("th", {}, when === "scheduled" ? "Scheduled for" : "Created"), h("th", {}, "Tags"), h("th", {}, "Message"))),
    h("tbody", {}, runs.map((run) => h("tr", { "data-run": run.id },
      h("td", {}, badge(run.state_type, run.state_name)), h("td", {}, runLink(run)),
      h("td", {}, time(when === "scheduled" ? run.scheduled_start_time || run.created : run.created)),
      h("td", {}, tags(run.tags)), h("td", { class: "msg" }, run.state_message || "")))));
}

function renderHeader(d) {
  document.title = `${d.full_name} · Sluice`;
  fill("title", d.full_name);
  fill("status", statusPill(d.paused));
  const toggle = document.getElementById("toggle-pause");
  toggle.hidden = false;
  toggle.textContent = d.paused ? "Resume schedule" : "Pause";
  const item = (label, value) => h("div", {}, h("span", {}, label), value);
  fill("summary",
    item("Flow", h("a", { href: `/runs?flow_name=${encodeURIComponent(d.flow_name)}` }, d.flow_name)),
    item("Entrypoint", h("code", {}, d.entrypoint)),
    item("Work pool / queue", [h("a", { href: `/work-pools#pool-${encodeURIComponent(d.work_pool_name)}` }, d.work_pool_name), " / ", d.work_queue_name]),
    item("Version", d.version || "—"),
    item("Concurrency limit", d.concurrency_limit === null ? "none" : String(d.concurrency_limit)),
    item("Updated", time(epoch(d.updated))),
    d.tags.length ? item("Tags", tags(d.tags)) : null,
    d.description ? item("Description", d.description) : null);
  fill("schedules", scheduleList(d.schedule_texts));
  if (document.getElementById("schedules-form").hidden) document.getElementById("edit-schedules").hidden = false;
}

function renderForm(d) {
  // Rebuilt only when the schema or defaults change, never under the user's typing.
  const key = JSON.stringify([d.parameter_schema, d.parameters]);
  if (key === formKey) return;
  formKey = key;
  form = parameterForm(document.getElementById("run-form"), d.parameter_schema, d.parameters, "Run");
}

async function refresh() {
  const { data, changed } = await api(`/api/ui/deployments/${path}`).catch(notFound);
  if (!changed) return;
  deployment = data.deployment;
  renderHeader(deployment);
  renderForm(deployment);
  fill("upcoming", runTable(data.upcoming, "No upcoming runs.", "scheduled"));
  fill("recent", runTable(data.recent, "No runs yet.", "created"));
  if (openAsked) {
    openAsked = false;
    editor.open(deployment.schedules);
    document.getElementById("schedules-card").scrollIntoView();
  }
}

const poller = poll(refresh, 2000);

const editor = scheduleEditor(document.getElementById("schedules-form"), path, () => poller.now());
const editButton = document.getElementById("edit-schedules");
editButton.addEventListener("click", () => { if (deployment) editor.open(deployment.schedules); });
let openAsked = location.hash === "#edit-schedules"; // the Deployments page's "edit" link

document.getElementById("toggle-pause").addEventListener("click", async () => {
  if (!deployment) return;
  try {
    const { data } = await api(base, { method: "PATCH", body: { paused: !deployment.paused } });
    fill("action-result", data.paused ? "Paused: no new scheduled runs, none claimed." : "Resumed.");
  } catch (error) {
    fill("action-result", h("span", { class: "error" }, `Refused: ${error.message}`));
  }
  poller.now();
});

document.getElementById("run-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!form) return;
  form.clear();
  let parameters;
  try {
    parameters = form.read();
  } catch (error) {
    form.showErrors(error.fields);
    fill("run-result", h("span", { class: "error" }, "Fix the marked fields."));
    return;
  }
  try {
    const { data } = await api(`/api/ui/deployments/${path}/runs`, { method: "POST", body: { parameters } });
    fill("run-result", "Created ", h("a", { href: `/runs/${encodeURIComponent(data.id)}`, id: "created-run" }, data.name), ".");
  } catch (error) {
    fill("run-result", h("span", { class: "error" }, `Not created: ${error.message}`));
    if (error instanceof ApiError && error.fields) {
      const left = form.showErrors(error.fields);
      if (left.length) fill("run-result", h("span", { class: "error" }, `Not created: ${left.map((p) => `${p.field}: ${p.message}`).join("; ")}`));
      else fill("run-result", h("span", { class: "error" }, "Not created: fix the marked fields."));
    }
  }
  poller.now();
});

document.getElementById("backfill-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const start = document.getElementById("bf-start").value;
  const end = document.getElementById("bf-end").value;
  const max = document.getElementById("bf-max").value;
  if (!start || !end) { fill("backfill-result", h("span", { class: "error" }, "Give a start and an end.")); return; }
  const body = { start: new Date(start).toISOString(), end: new Date(end).toISOString() };
  if (max) body.max_active = Number(max);
  try {
    const { data } = await api(`/api/ui/deployments/${path}/backfill`, { method: "POST", body });
    fill("backfill-result", data.background
      ? `${data.ticks} schedule ticks: their runs are being created, at most ${body.max_active} unfinished at a time.`
      : `Created ${data.created} runs for ${data.ticks} schedule ticks${data.created < data.ticks ? " (the others had a run already)" : ""}.`);
  } catch (error) {
    fill("backfill-result", h("span", { class: "error" }, `Backfill refused: ${error.message}`));
  }
  poller.now();
});
