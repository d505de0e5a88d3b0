// A log viewer: level filter and text search run on the server; lines are paged by id,
// and polling asks only for lines after the last one shown.
import { api, fill, h, url } from "./core.js";

const LEVELS = [["0", "all levels"], ["10", "debug+"], ["20", "info+"], ["30", "warning+"], ["40", "error+"]];
const NAMES = { 10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL" };
const PAGE = 200;
// Lines kept in the page: a run tailed for hours must not grow the DOM without end.
const MAX_SHOWN = 2000;

export function logViewer(container, flowRunId, taskRunId = null) {
  const level = h("select", { class: "log-level", "aria-label": "Minimum level" }, LEVELS.map(([v, t]) => h("option", { value: v }, t)));
  const search = h("input", { type: "search", class: "log-search", placeholder: "search text", size: 24, "aria-label": "Search logs" });
  const lines = h("div", { class: "logs", "data-testid": "logs" });
  const more = h("button", { type: "button", hidden: true }, "Load more");
  const info = h("span", { class: "note" });
  fill(container, h("div", { class: "toolbar" }, level, search, info), lines, more);
  let lastId = 0, hasMore = false, generation = 0, shown = 0;

  async function load(reset) {
    if (reset) { generation++; lastId = 0; shown = 0; lines.replaceChildren(); delete info.dataset.trimmed; }
    const mine = generation;
    const path = url(`/api/ui/flow_runs/${encodeURIComponent(flowRunId)}/logs`, {
      task_run_id: taskRunId, min_level: level.value, q: search.value, after_id: lastId, limit: PAGE,
    });
    const { data } = await api(path);
    if (mine !== generation) return;
    const atBottom = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 4;
    for (const line of data.logs) {
      if (line.id <= lastId) continue;
      lines.append(h("div", { class: "line" },
        h("span", { class: "t" }, new Date(line.timestamp * 1000).toLocaleTimeString()),
        h("span", { class: `lv lv-${line.level}` }, NAMES[line.level] || String(line.level)),
        line.message));
      shown++;
    }
    let trimmed = 0;
    while (lines.childElementCount > MAX_SHOWN) { lines.firstElementChild.remove(); trimmed++; }
    if (trimmed) info.dataset.trimmed = "1";
    lastId = data.last_id;
    hasMore = data.more;
    more.hidden = !hasMore;
    info.textContent = shown ? `${shown.toLocaleString()} lines${hasMore ? " (more below)" : ""}` +
      (info.dataset.trimmed ? ` · only the last ${MAX_SHOWN.toLocaleString()} are kept here: search to narrow` : "") : "";
    if (!shown) lines.replaceChildren(h("div", { class: "empty-logs" }, search.value || level.value !== "0" ? "No matching log lines." : "No log lines yet."));
    else lines.querySelector(".empty-logs")?.remove();
    if (atBottom && data.logs.length) lines.scrollTop = lines.scrollHeight;
  }

  let debounce = null;
  level.addEventListener("change", () => load(true));
  search.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => load(true), 250); });
  more.addEventListener("click", () => load(false));
  // Live tail: ask for what came after the last line, unless the reader is paging.
  return { refresh: () => (hasMore ? Promise.resolve() : load(false)) };
}
