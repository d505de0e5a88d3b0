import { api, empty, epoch, fill, h, poll, time } from "./core.js";
import { statusPill } from "./deploy_common.js";

let poller = null;

function limit(value) { return value === null || value === undefined ? "no limit" : String(value); }

function queueTable(queues) {
  if (!queues.length) return empty("No queues.");
  return h("table", { class: "grid queues" },
    h("thead", {}, h("tr", {}, h("th", {}, "Queue"), h("th", {}, "Priority"), h("th", { title: "Scheduled runs whose time has come: they wait for a worker" }, "Due runs"), h("th", {}, "Scheduled later"), h("th", {}, "Concurrency"), h("th", {}, "Status"))),
    h("tbody", {}, queues.map((q) => h("tr", { "data-queue": q.name },
      h("td", {}, q.name, q.description ? h("div", { class: "note" }, q.description) : null),
      h("td", {}, String(q.priority)), h("td", { class: "depth" }, String(q.due)), h("td", { class: "later" }, String(q.later)),
      h("td", {}, limit(q.concurrency_limit)), h("td", {}, statusPill(q.paused))))));
}

function workerTable(workers) {
  if (!workers.length) return empty("No worker has joined this pool. Start one with: sluice worker start --pool NAME");
  return h("table", { class: "grid workers" },
    h("thead", {}, h("tr", {}, h("th", {}, "Worker"), h("th", {}, "Status"), h("th", {}, "Last heartbeat"), h("th", {}, "Host"), h("th", {}, "PID"))),
    h("tbody", {}, workers.map((w) => h("tr", { "data-worker": w.name },
      h("td", {}, w.name),
      h("td", { class: "worker-status" }, h("span", { class: `dot${w.online ? " online" : ""}` }), " ", w.online ? "online" : w.status === "STOPPED" ? "stopped" : "offline"),
      h("td", {}, time(epoch(w.last_heartbeat))), h("td", {}, w.hostname || "—"), h("td", {}, w.pid === null ? "—" : String(w.pid))))));
}

async function setPaused(pool, paused, result) {
  try {
    await api(`/api/work_pools/${encodeURIComponent(pool.name)}`, { method: "PATCH", body: { paused } });
    fill(result, paused ? "Paused: workers get no runs from it." : "Resumed.");
  } catch (error) {
    fill(result, h("span", { class: "error" }, `Refused: ${error.message}`));
  }
  poller.now();
}

function poolCard(pool) {
  const result = h("span", { class: "note" });
  const toggle = h("button", { type: "button", class: "toggle-pool" }, pool.paused ? "Resume pool" : "Pause pool");
  toggle.addEventListener("click", () => setPaused(pool, !pool.paused, result));
  const online = pool.workers.filter((w) => w.online).length;
  return h("section", { class: "card pool", id: `pool-${pool.name}`, "data-pool": pool.name },
    h("div", { class: "page-head" },
      h("h2", {}, pool.name, " ", h("small", {}, pool.type)),
      h("div", { class: "actions" }, statusPill(pool.paused), toggle, result)),
    pool.description ? h("p", { class: "note" }, pool.description) : null,
    h("div", { class: "summary" },
      h("div", {}, h("span", {}, "Concurrency limit"), limit(pool.concurrency_limit)),
      h("div", {}, h("span", {}, "Workers online"), `${online} of ${pool.workers.length}`),
      h("div", {}, h("span", {}, "Due runs"), String(pool.queues.reduce((n, q) => n + q.due, 0)))),
    h("h2", {}, "Queues ", h("small", {}, "served by priority, 1 first")), queueTable(pool.queues),
    h("h2", {}, "Workers"), workerTable(pool.workers));
}

async function refresh() {
  const { data, changed } = await api("/api/ui/work_pools", { view: "work_pools" });
  if (!changed) return;
  fill("pools", data.pools.length ? data.pools.map(poolCard) : empty("No work pools yet: deploying a flow creates its pool."));
  fill("page-info", `a worker is offline after ${data.heartbeat_timeout} s without a heartbeat`);
}

poller = poll(refresh, 2000);
