import { api, badge, empty, fill, h, number, poll, runLink, time } from "./core.js";
import { legend, stackedBars } from "./charts.js";

const params = new URLSearchParams(location.search);
let range = ["1h", "24h", "7d", "30d"].includes(params.get("range")) ? params.get("range") : "24h";

function runList(runs, text) {
  if (!runs.length) return empty(text);
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, h("th", {}, "State"), h("th", {}, "Run"), h("th", {}, "Flow"), h("th", {}, "Created"), h("th", {}, "Message"))),
    h("tbody", {}, runs.map((run) => h("tr", {},
      h("td", {}, badge(run.state_type, run.state_name)), h("td", {}, runLink(run)), h("td", {}, run.flow_name),
      h("td", {}, time(run.created)), h("td", { class: "msg" }, run.state_message || "")))));
}

async function refresh() {
  const { data, changed } = await api(`/api/ui/dashboard?range=${range}`, { view: "dashboard" });
  if (!changed) return;
  const total = Object.values(data.totals).reduce((a, b) => a + b, 0);
  const failed = (data.totals.FAILED || 0) + (data.totals.CRASHED || 0);
  const stat = (value, label, href) => h("a", { class: "stat", href }, h("b", {}, number(value)), h("span", {}, label));
  fill("stats",
    stat(total, `runs in the last ${range}`, `/runs?range=${range}`),
    stat(data.totals.COMPLETED || 0, "completed", `/runs?range=${range}&state=COMPLETED`),
    stat(failed, "failed or crashed", `/runs?range=${range}&state=FAILED`),
    stat(data.running, "running now", "/runs?state=RUNNING"),
    stat(data.late_count, "late", "/runs?state=SCHEDULED"),
    stat((data.workers_online || []).length, "workers online", "/work-pools"));
  fill("chart", stackedBars(data, (state) => { location.href = `/runs?range=${range}&state=${state}`; }));
  fill("legend", legend(Object.keys(data.totals)));
  fill("failures", runList(data.failures, "No failed or crashed runs in this range."));
  fill("late", runList(data.late, "No late runs."));
  fill("workers", workerList(data.workers_online || []));
}

function workerList(workers) {
  if (!workers.length) return empty("No worker online. Start one with: sluice worker start --pool POOL");
  return h("ul", { class: "workers" }, workers.map((w) => h("li", { "data-worker": w.name },
    h("span", { class: "dot online" }), " ", h("b", {}, w.name), " in pool ",
    h("a", { href: `/work-pools#pool-${encodeURIComponent(w.pool_name)}` }, w.pool_name),
    w.hostname ? h("span", { class: "note" }, ` on ${w.hostname}`) : null)));
}

function markRange() {
  for (const button of document.querySelectorAll("#ranges button")) button.classList.toggle("active", button.dataset.range === range);
}

const poller = poll(refresh, 2000);
markRange();
document.getElementById("ranges").addEventListener("click", (event) => {
  const chosen = event.target.dataset && event.target.dataset.range;
  if (!chosen) return;
  range = chosen;
  history.replaceState(null, "", `/?range=${range}`);
  markRange();
  poller.now();
});
