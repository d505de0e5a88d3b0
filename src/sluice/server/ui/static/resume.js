// Resuming a Failed, Crashed or Cancelled run from its page. A deployment's run goes
// back to its work pool (POST /api/flow_runs/{id}/resume) and a worker reruns it,
// replaying what already succeeded; "Resume from here" on a task row sends that task
// as from_task, so it and every later call run again. Any other run is resumed where
// its code is, so the page shows the command (with --from for a chosen task).
import { api, fill, h } from "./core.js";

export const RESUMABLE = new Set(["FAILED", "CRASHED", "CANCELLED"]);

/** The from_task of a task row: its task name and call index (a .map call as a whole). */
export function fromKey(task) { return `${task.task_name}:${task.call_index}`; }

/** `text` as one word of a POSIX shell command (quoted unless plainly safe). */
export function shellWord(text) {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

function resumeCommand(runId, key) {
  return `sluice flow-run resume ${runId}` + (key ? ` --from ${shellWord(key)}` : "");
}

async function copy(text, note) {
  try {
    await navigator.clipboard.writeText(text);
    fill(note, "Copied.");
  } catch (_) {
    fill(note, "Copying is not allowed here: select the command and copy it.");
  }
}

/**
 * The resume controls of the flow-run page. `refresh` is called after a request so the
 * live view follows the run (AwaitingResume, Running, ...).
 */
export function resumeControls(refresh) {
  let features = null;
  let run = null;
  let shownFor = null;

  const offered = () => Boolean(features && features.resume && run && RESUMABLE.has(run.state_type));

  function plainResume() {
    if (!run.deployment_id) {
      return h("span", { class: "note", id: "resume-command", title: "Add --from TASK (NAME or NAME:INDEX) to re-execute from that task onwards." },
        "Resume from its code with: ", h("code", {}, resumeCommand(run.id)), " (or pick a task below: Resume from here)");
    }
    const button = h("button", { type: "button", id: "resume" }, "Resume");
    button.title = "Queue the run again in its work pool; a worker reruns it, replaying what already succeeded.";
    button.addEventListener("click", () => send(null, button));
    return button;
  }

  async function send(key, button, errorBox) {
    button.disabled = true;
    try {
      const { data } = await api(`/api/flow_runs/${encodeURIComponent(run.id)}/resume`,
        key === null ? { method: "POST" } : { method: "POST", body: { from_task: key } });
      const from = key === null ? "" : [" from task ", h("code", {}, key)];
      fill("action-result", "Queued to resume", from, `: the run is ${data.state_name}; a worker of its pool picks it up.`);
      closePanel();
    } catch (error) {
      const fields = (error.fields || []).map((f) => f.message);
      const text = `Resume refused: ${fields.length ? fields.join("; ") : error.message}`;
      fill(errorBox || "action-result", h("span", { class: "error" }, text));
      button.disabled = false;
    }
    refresh();
  }

  function closePanel() {
    const panel = document.getElementById("resume-from");
    panel.hidden = true;
    panel.replaceChildren();
  }

  /** Show what resuming from `task` does, with the button that does it (or the command). */
  function choose(task) {
    const key = fromKey(task);
    const panel = document.getElementById("resume-from");
    const what = task.map_index >= 0
      ? ["every member of call ", String(task.call_index), " (a .map call) of task ", h("b", {}, task.task_name)]
      : ["call ", String(task.call_index), " of task ", h("b", {}, task.task_name)];
    const close = h("button", { type: "button", id: "resume-from-close" }, "Never mind");
    close.addEventListener("click", closePanel);
    const head = h("p", {}, "Resume from ", ...what, ": it and every task call the flow makes after it run again; ",
      "the calls before it that completed are replayed from the journal.");
    if (!run.deployment_id) {
      const note = h("span", { class: "note", id: "resume-from-note" });
      const copyButton = h("button", { type: "button", id: "resume-from-copy" }, "Copy");
      const command = resumeCommand(run.id, key);
      copyButton.addEventListener("click", () => copy(command, note));
      fill(panel, head,
        h("p", {}, "This run has no deployment, so no worker can take it: run this where its code is."),
        h("p", {}, h("code", { id: "resume-from-command" }, command)),
        h("div", { class: "actions" }, copyButton, close, note));
    } else {
      const errorBox = h("div", { id: "resume-from-error" });
      const confirm = h("button", { type: "button", id: "resume-from-confirm", class: "danger" }, "Confirm resume from here");
      confirm.addEventListener("click", () => send(key, confirm, errorBox));
      fill(panel, head, h("div", { class: "actions" }, confirm, close), errorBox);
    }
    panel.dataset.task = key;
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
  }

  return {
    offered,
    /** The "Resume from here" button of a task row, or null when the run cannot resume. */
    rowAction(task) {
      if (!offered()) return null;
      const button = h("button", { type: "button", class: "resume-from", "data-task": fromKey(task) }, "Resume from here");
      button.title = "Re-execute this call and everything after it; earlier completed calls are replayed.";
      button.addEventListener("click", () => choose(task));
      return button;
    },
    setFeatures(value) { features = value; return this.render(run); },
    /** Redraw for `current` (the run as last read); true when rows need their action redrawn. */
    render(current) {
      run = current;
      if (!features || !run) return false;
      const key = `${run.id}:${run.state_type}:${Boolean(run.deployment_id)}`;
      if (key === shownFor) return false;
      shownFor = key;
      document.getElementById("task-runs").classList.toggle("resumable", offered());
      if (!offered()) {
        fill("resume-actions");
        closePanel();
      } else {
        fill("resume-actions", plainResume());
      }
      return true;
    },
  };
}
