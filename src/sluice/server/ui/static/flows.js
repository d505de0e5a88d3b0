import { api, badge, empty, h, number, poll, runLink, stateColor, time, url } from "./core.js";

const PAGE = 50;
let offset = 0;

function squares(runs) {
  return h("span", { class: "squares" }, runs.map((run) =>
    h("a", { href: `/runs/${encodeURIComponent(run.id)}`, style: `background:${stateColor(run.state_type)}`, title: `${run.name}: ${run.state_name}` })));
}

async function refresh() {
  const { data, changed } = await api(url("/api/ui/flows", { offset, limit: PAGE, runs: 10 }), { view: "flows" });
  if (!changed) return;
  const body = document.querySelector("#flows tbody");
  body.replaceChildren(...(data.flows.length ? data.flows.map((flow) => {
    const latest = flow.recent_runs[0];
    return h("tr", { "data-flow": flow.name },
      h("td", {}, h("a", { href: url("/runs", { flow_name: flow.name }) }, flow.name)),
      h("td", { class: "msg" }, flow.description || ""),
      h("td", {}, time(flow.created)),
      h("td", {}, latest ? [badge(latest.state_type, latest.state_name), " ", runLink(latest), h("div", { class: "note" }, time(latest.start_time || latest.created))] : "no runs"),
      h("td", {}, squares(flow.recent_runs)));
  }) : [h("tr", {}, h("td", { colspan: 5 }, empty("No flows yet: run one and it appears here.")))]));
  document.getElementById("page-info").textContent = data.flows.length ? `${number(offset + 1)}–${number(offset + data.flows.length)}` : "";
  document.getElementById("prev").disabled = offset === 0;
  document.getElementById("next").disabled = data.flows.length < PAGE;
}

const poller = poll(refresh, 5000);
document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); poller.now(); });
document.getElementById("next").addEventListener("click", () => { offset += PAGE; poller.now(); });
