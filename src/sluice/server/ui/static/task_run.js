import { FINAL, api, badge, duration, empty, epoch, fill, h, poll, preview, runDuration, runLink, tags, taskLink, time } from "./core.js";
import { notFound } from "./core.js";
import { logViewer } from "./logs.js";

const taskRunId = document.getElementById("app").dataset.id;
let task = null;
let logs = null;

function item(label, ...value) { return h("div", {}, h("span", {}, label), ...value); }


/** State rows with an attempt number: each Running (or Retrying) entry starts an attempt. */
function attempts(states) {
  let attempt = 0;
  return states.map((state) => {
    if (state.type === "RUNNING") attempt++;
    const detail = state.details && (state.details.traceback || state.details.exception_type);
    return h("tr", { class: attempt % 2 ? "odd" : "even" },
      h("td", {}, attempt ? String(attempt) : "—"),
      h("td", {}, time(state.timestamp)),
      h("td", {}, badge(state.type, state.name)),
      h("td", { class: "msg" }, state.message || "", detail ? h("details", {}, h("summary", {}, "details"), h("pre", {}, String(detail))) : null));
  });
}

async function refresh() {
  const { data, changed } = await api(`/api/ui/task_runs/${encodeURIComponent(taskRunId)}`).catch(notFound);
  if (changed) {
    task = data.task_run;
    const start = epoch(task.start_time), end = epoch(task.end_time);
    document.title = `${task.name} · Sluice`;
    fill("title", `${task.name} `, badge(task.state_type, task.state_name));
    fill("summary",
      item("Task run id", h("code", {}, task.id)),
      item("Task", task.task_name),
      data.flow_run ? item("Flow run", runLink(data.flow_run)) : null,
      item("Call / map index", `${task.call_index}${task.map_index >= 0 ? " / " + task.map_index : ""}`),
      item("Started", time(start)),
      item("Duration", duration(runDuration({ start_time: start, end_time: end }))),
      item("Attempts", String(task.run_count)),
      task.cache_key ? item("Cache key", h("code", {}, task.cache_key)) : null,
      task.tags.length ? item("Tags", tags(task.tags)) : null,
      task.state_message ? item("Message", task.state_message) : null);
    document.querySelector("#states tbody").replaceChildren(...attempts(data.states));
    fill("result", preview(data.result));
    fill("upstream", data.upstream.length
      ? h("ul", {}, data.upstream.map((up) => h("li", {}, badge(up.state_type, up.state_name), " ", taskLink(up.id, up.name))))
      : empty("No upstream task runs."));
    if (!logs && task.flow_run_id) logs = logViewer(document.getElementById("logs"), task.flow_run_id, task.id);
    else if (!task.flow_run_id) fill("logs", empty("This task ran outside a flow run; its logs are not stored per task."));
  }
  if (logs) await logs.refresh();
}

poll(refresh, () => (task && FINAL.has(task.state_type) ? 10000 : 2000));
