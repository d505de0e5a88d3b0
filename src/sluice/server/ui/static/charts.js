// SVG charts drawn by hand: stacked bars of runs over time, and the task-run timeline.
import { FINAL, STATES, duration, h, s, stateColor } from "./core.js";

/** Bars per time bucket, stacked by state. `data` is /api/ui/dashboard's answer. */
export function stackedBars(data, onPick) {
  const width = 900, height = 220, left = 40, bottom = 24, top = 8;
  const counts = data.buckets.map((bucket) => Object.values(bucket).reduce((a, b) => a + b, 0));
  const peak = Math.max(1, ...counts);
  const slot = (width - left) / data.buckets.length;
  const scale = (height - bottom - top) / peak;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": "Flow runs over time" });
  for (const fraction of [0, 0.5, 1]) {
    const y = height - bottom - fraction * peak * scale;
    svg.append(s("line", { class: "axis", x1: left, x2: width, y1: y, y2: y }),
      s("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "muted" }, String(Math.round(fraction * peak))));
  }
  data.buckets.forEach((bucket, i) => {
    let y = height - bottom;
    const x = left + i * slot + 1;
    const start = data.since + i * data.width;
    for (const state of STATES) {
      const n = bucket[state];
      if (!n) continue;
      const barHeight = Math.max(1, n * scale);
      y -= barHeight;
      const rect = s("rect", { x, y, width: Math.max(1, slot - 2), height: barHeight, fill: stateColor(state), class: "bar", "data-state": state },
        s("title", {}, `${new Date(start * 1000).toLocaleString()}: ${n} ${state.toLowerCase()}`));
      if (onPick) rect.addEventListener("click", () => onPick(state, start, start + data.width));
      svg.append(rect);
    }
  });
  const labels = 6;
  for (let j = 0; j <= labels; j++) {
    const i = Math.round((j * (data.buckets.length - 1)) / labels);
    const at = new Date((data.since + i * data.width) * 1000);
    const text = data.width >= 3 * 3600 ? at.toLocaleDateString(undefined, { month: "short", day: "numeric" }) : at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    const anchor = j === 0 ? "start" : j === labels ? "end" : "middle";
    svg.append(s("text", { x: j === labels ? width : left + i * slot, y: height - 6, class: "muted", "text-anchor": anchor }, text));
  }
  return svg;
}

export function legend(states) {
  return states.map((state) => h("span", {}, h("i", { style: `background:${stateColor(state)}` }), state.toLowerCase()));
}

/** The state a group shows: the most telling one present (failures first). */
export function mainState(states) {
  for (const state of ["FAILED", "CRASHED", "RUNNING", "CANCELLING", "PAUSED", "PENDING", "SCHEDULED", "CANCELLED", "COMPLETED"]) {
    if (states[state]) return state;
  }
  return "PENDING";
}

/** A Gantt chart of graph nodes (task runs, or mapped groups) from /api/ui/.../graph. */
export function gantt(nodes, onPick) {
  const rows = nodes.filter((node) => node.start !== null).sort((a, b) => a.start - b.start);
  if (!rows.length) return null;
  const now = Date.now() / 1000;
  const begin = rows[0].start;
  const finish = Math.max(...rows.map((node) => node.end ?? now));
  const span = Math.max(finish - begin, 0.001);
  const labelWidth = 240, chartWidth = 760, rowHeight = 22, top = 22;
  const svg = s("svg", { width: labelWidth + chartWidth + 20, height: top + rows.length * rowHeight + 8, role: "img", "aria-label": "Task run timeline" });
  for (let j = 0; j <= 4; j++) {
    const x = labelWidth + (j * chartWidth) / 4;
    svg.append(s("line", { class: "axis", x1: x, x2: x, y1: top - 4, y2: top + rows.length * rowHeight }),
      s("text", { x: j === 4 ? x - 2 : x + 2, y: 14, class: "muted", "text-anchor": j === 4 ? "end" : "start" }, "+" + duration((j * span) / 4)));
  }
  rows.forEach((node, i) => {
    const y = top + i * rowHeight;
    const x = labelWidth + ((node.start - begin) / span) * chartWidth;
    const end = node.end ?? now;
    const width = Math.max(2, ((end - node.start) / span) * chartWidth);
    const label = node.count > 1 || node.kind !== "task" ? `${node.label} ×${node.count}` : node.label;
    const state = node.kind === "task" ? Object.keys(node.states)[0] : mainState(node.states);
    const row = s("g", { class: "node bar-row", "data-key": node.key },
      s("title", {}, `${label}: ${duration(end - node.start)}${node.end === null ? " (running)" : ""}`),
      s("text", { x: 4, y: y + 15 }, label.length > 34 ? label.slice(0, 33) + "…" : label),
      s("rect", { x, y: y + 4, width, height: rowHeight - 8, rx: 2, fill: stateColor(state), opacity: FINAL.has(state) ? 1 : 0.75 }));
    if (onPick) row.addEventListener("click", () => onPick(node));
    svg.append(row);
  });
  return svg;
}
