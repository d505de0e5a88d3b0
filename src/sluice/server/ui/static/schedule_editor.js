// The schedules editor of the deployment page: one row per schedule (kind, value,
// timezone), sent whole to PUT /api/ui/deployments/{flow}/{name}/schedules. The server
// checks every row; its 422 names each bad field (schedules.<i>.value or .timezone),
// shown under that field. Nothing is saved unless every row is right.
import { ApiError, api, fill, h } from "./core.js";

const KINDS = ["cron", "interval", "rrule"];
const PLACEHOLDER = {
  cron: "0 6 * * *  (minute hour day month weekday)",
  interval: "1h  (or 3600, 90s, 15m, 1h30m, 1d)",
  rrule: "FREQ=WEEKLY;BYDAY=MO;BYHOUR=6",
};

function intervalText(seconds) {
  const n = Number(seconds);
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return String(n);
}

// What the form does not edit but a save must keep: an interval's phase and the
// schedule's own options (parameters, active, slug; see schedule_options.py).
const KEPT = ["anchor_date", "parameters", "active", "slug"];

function keptOf(schedule) {
  return Object.fromEntries(KEPT.filter((key) => schedule[key] !== undefined && schedule[key] !== null).map((key) => [key, schedule[key]]));
}

/** A stored schedule (a dict with a kind) as a row of the form. */
function rowOf(schedule) {
  const kind = KINDS.includes(schedule.kind) ? schedule.kind : "cron";
  const value = kind === "interval" ? intervalText(schedule.interval) : String(schedule[kind] ?? "");
  return { kind, value, timezone: schedule.timezone || "UTC", kept: keptOf(schedule) };
}

/** A row as the body of the save request. */
function bodyOf({ kind, value, timezone, kept }) {
  const { anchor_date, ...options } = kept || {};
  return anchor_date && kind === "interval" ? { kind, value, timezone, anchor_date, ...options } : { kind, value, timezone, ...options };
}

function errorSlot(field) { return h("span", { class: "field-error", "data-error-for": field }); }

/**
 * Bind the editor to `form` (a <form>); `path` is the deployment's FLOW/NAME, URL-encoded;
 * `saved(deployment)` runs after a successful save. Returns {open(schedules)}.
 */
export function scheduleEditor(form, path, saved) {
  let rows = [];

  function readRows() {
    return [...form.querySelectorAll(".schedule-row")].map((row, i) => ({
      kind: row.querySelector("[data-field=kind]").value,
      value: row.querySelector("[data-field=value]").value,
      timezone: row.querySelector("[data-field=timezone]").value,
      kept: rows[i] ? rows[i].kept : {},
    }));
  }

  function rowElement(row, i) {
    const kind = h("select", { "data-field": "kind", "aria-label": `Schedule ${i + 1} kind` },
      KINDS.map((k) => h("option", { value: k, selected: k === row.kind }, k)));
    const value = h("input", { type: "text", "data-field": "value", value: row.value, placeholder: PLACEHOLDER[row.kind], "aria-label": `Schedule ${i + 1}` });
    const zone = h("input", { type: "text", "data-field": "timezone", value: row.timezone, placeholder: "UTC", "aria-label": `Schedule ${i + 1} timezone` });
    kind.addEventListener("change", () => { value.placeholder = PLACEHOLDER[kind.value]; });
    const remove = h("button", { type: "button", class: "remove-schedule" }, "Remove");
    remove.addEventListener("click", () => { rows = readRows(); rows.splice(i, 1); draw(); });
    return h("div", { class: "schedule-row", "data-index": String(i) },
      kind,
      h("div", {}, value, errorSlot(`schedules.${i}.value`)),
      h("div", {}, zone, errorSlot(`schedules.${i}.timezone`)),
      remove);
  }

  function draw() {
    const add = h("button", { type: "button", id: "add-schedule" }, "Add schedule");
    add.addEventListener("click", () => { rows = readRows(); rows.push({ kind: "cron", value: "", timezone: "UTC", kept: {} }); draw(); });
    const cancel = h("button", { type: "button", id: "cancel-schedules" }, "Cancel");
    cancel.addEventListener("click", close);
    fill(form,
      h("div", { class: "schedule-head" }, h("span", {}, "Kind"), h("span", {}, "Cron expression, interval or rule"), h("span", {}, "Timezone (IANA)"), h("span", {})),
      rows.length ? rows.map(rowElement) : h("p", { class: "note" }, "No schedule: the deployment runs only when triggered."),
      h("div", { class: "actions" }, add, h("button", { type: "submit", id: "save-schedules" }, "Save schedules"), cancel),
      h("p", { class: "note", id: "schedules-result" }));
  }

  function showErrors(fields) {
    const slots = [...form.querySelectorAll("[data-error-for]")];
    const left = [];
    for (const { field, message } of fields) {
      const slot = slots.find((s) => s.dataset.errorFor === field);
      if (!slot) { left.push(`${field}: ${message}`); continue; }
      slot.textContent = message;
      slot.previousElementSibling.classList.add("invalid");
    }
    fill("schedules-result", h("span", { class: "error" }, left.length ? `Not saved: ${left.join("; ")}` : "Not saved: fix the marked fields."));
  }

  function close() {
    form.hidden = true;
    form.replaceChildren();
    document.getElementById("edit-schedules").hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    rows = readRows();
    for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
    for (const input of form.querySelectorAll(".invalid")) input.classList.remove("invalid");
    const body = { schedules: rows.map(bodyOf) };
    try {
      const { data } = await api(`/api/ui/deployments/${path}/schedules`, { method: "PUT", body });
      close();
      const n = data.schedules.length;
      fill("action-result", `Schedules saved (${n === 0 ? "none" : n}): upcoming runs of the old ones were removed, the scheduler plans the new ones.`);
      saved(data);
    } catch (error) {
      if (error instanceof ApiError && error.fields) showErrors(error.fields);
      else fill("schedules-result", h("span", { class: "error" }, `Not saved: ${error.message}`));
    }
  });

  return {
    /** Show the editor filled with the deployment's stored schedules. */
    open(schedules) {
      rows = schedules.map(rowOf);
      draw();
      form.hidden = false;
      document.getElementById("edit-schedules").hidden = true;
      const first = form.querySelector("input, select");
      if (first) first.focus();
    },
  };
}
