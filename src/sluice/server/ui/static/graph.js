// The task-run dependency graph: layered left to right, drawn as SVG.
import { s, stateColor, STATES } from "./core.js";
import { mainState } from "./charts.js";

const NODE_W = 180, NODE_H = 34, GAP_X = 70, GAP_Y = 14, PAD = 16;

/** Layer = longest path from a source; nodes without edges keep server (creation) order. */
function layers(nodes, edges) {
  const index = new Map(nodes.map((node, i) => [node.key, i]));
  const preds = nodes.map(() => []);
  const succs = nodes.map(() => []);
  for (const [from, to] of edges) {
    const a = index.get(from), b = index.get(to);
    if (a === undefined || b === undefined) continue;
    preds[b].push(a); succs[a].push(b);
  }
  const depth = new Array(nodes.length).fill(0);
  const indegree = preds.map((p) => p.length);
  const queue = [];
  indegree.forEach((d, i) => { if (d === 0) queue.push(i); });
  for (let head = 0; head < queue.length; head++) {
    const i = queue[head];
    for (const j of succs[i]) {
      depth[j] = Math.max(depth[j], depth[i] + 1);
      if (--indegree[j] === 0) queue.push(j);
    }
  }
  const columns = [];
  nodes.forEach((_, i) => { (columns[depth[i]] ||= []).push(i); });
  // One pass of barycentre ordering: a node sits near the mean row of its upstreams.
  const row = new Array(nodes.length).fill(0);
  columns.forEach((column, c) => {
    if (c > 0) {
      const weight = (i) => (preds[i].length ? preds[i].reduce((sum, p) => sum + row[p], 0) / preds[i].length : Infinity);
      column.sort((a, b) => weight(a) - weight(b) || a - b);
    }
    column.forEach((i, r) => { row[i] = r; });
  });
  return { columns, row, depth, index };
}

function stateStrip(node, x, y) {
  // A group's task runs by state, as proportional segments along the box's foot.
  const parts = [];
  let offset = 0;
  for (const state of STATES) {
    const n = node.states[state];
    if (!n) continue;
    const width = (n / node.count) * NODE_W;
    parts.push(s("rect", { x: x + offset, y: y + NODE_H - 5, width, height: 5, fill: stateColor(state) }));
    offset += width;
  }
  return parts;
}

/** "×9,998 · 104 failed": the count, and how many are in the most telling state. */
function groupSummary(node, state) {
  const n = node.states[state] || 0;
  const what = n === node.count ? `all ${state.toLowerCase()}` : `${n.toLocaleString()} ${state.toLowerCase()}`;
  return `×${node.count.toLocaleString()} · ${what}`;
}

/** An SVG of `graph` (/api/ui/flow_runs/{id}/graph); `onPick(node)` on click. */
export function drawGraph(graph, onPick) {
  const { nodes, edges } = graph;
  const { columns, row, depth, index } = layers(nodes, edges);
  const tallest = Math.max(1, ...columns.map((c) => c.length));
  const width = PAD * 2 + columns.length * (NODE_W + GAP_X) - GAP_X;
  const height = PAD * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y;
  const svg = s("svg", { width, height, role: "img", "aria-label": "Task run dependency graph" });
  const at = (i) => [PAD + depth[i] * (NODE_W + GAP_X), PAD + row[i] * (NODE_H + GAP_Y)];
  const edgeLayer = s("g", {});
  for (const [from, to] of edges) {
    const a = index.get(from), b = index.get(to);
    if (a === undefined || b === undefined) continue;
    const [x1, y1] = at(a), [x2, y2] = at(b);
    const sx = x1 + NODE_W, sy = y1 + NODE_H / 2, ex = x2, ey = y2 + NODE_H / 2, mid = (sx + ex) / 2;
    edgeLayer.append(s("path", { class: "edge", d: `M${sx},${sy} C${mid},${sy} ${mid},${ey} ${ex},${ey}` }));
  }
  svg.append(edgeLayer);
  nodes.forEach((node, i) => {
    const [x, y] = at(i);
    const grouped = node.kind !== "task";
    const state = grouped ? mainState(node.states) : Object.keys(node.states)[0];
    const label = node.label.length > 22 ? node.label.slice(0, 21) + "…" : node.label;
    const hint = node.kind === "map" ? `${node.count} mapped task runs (click to expand)` : node.kind === "name" ? `${node.count} calls folded by task name` : `${node.state_name}`;
    const group = s("g", { class: "node", "data-key": node.key, "data-kind": node.kind },
      s("title", {}, `${node.label}: ${hint}`),
      s("rect", { class: "box", x, y, width: NODE_W, height: NODE_H, rx: 4 }),
      s("rect", { x, y, width: 5, height: NODE_H, fill: stateColor(state) }),
      s("text", { x: x + 11, y: y + 15 }, label),
      s("text", { x: x + 11, y: y + 28, class: "muted" }, grouped ? groupSummary(node, state) : (node.state_name || state)),
      grouped ? stateStrip(node, x, y) : []);
    if (onPick) group.addEventListener("click", () => onPick(node));
    svg.append(group);
  });
  return svg;
}
