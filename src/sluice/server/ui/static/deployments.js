import { api, empty, h, number, poll, time } from "./core.js";
import { deploymentHref, scheduleList, statusPill } from "./deploy_common.js";

function nextRuns(runs) {
  if (!runs.length) return h("span", { class: "note" }, "none scheduled");
  return h("ul", { class: "schedules" }, runs.map((run) => h("li", {},
    h("a", { href: `/runs/${encodeURIComponent(run.id)}` }, time(run.scheduled_start_time || run.created)))));
}

async function refresh() {
  const { data, changed } = await api("/api/ui/deployments", { view: "deployments" });
  if (!changed) return;
  const rows = data.deployments.map((d) => h("tr", { "data-deployment": d.full_name },
    h("td", {}, h("a", { href: deploymentHref(d) }, d.full_name), d.description ? h("div", { class: "note" }, d.description) : null),
    h("td", {}, scheduleList(d.schedule_texts), h("a", { class: "edit-schedules note", href: `${deploymentHref(d)}#edit-schedules` }, "edit schedules")),
    h("td", {}, statusPill(d.paused)),
    h("td", {}, h("a", { href: `/work-pools#pool-${encodeURIComponent(d.work_pool_name)}` }, d.work_pool_name), " / ", d.work_queue_name),
    h("td", {}, nextRuns(d.next_runs))));
  document.querySelector("#deployments tbody").replaceChildren(...(rows.length ? rows
    : [h("tr", {}, h("td", { colspan: 5 }, empty("No deployments yet: create one with sluice deploy.")))]));
  document.getElementById("page-info").textContent = `${number(rows.length)} deployment${rows.length === 1 ? "" : "s"}`;
}

poll(refresh, 3000);
