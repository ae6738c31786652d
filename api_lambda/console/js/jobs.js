// The jobs this browser submitted (local storage), their live status by polling `GET /jobs/{id}`,
// and the list that shows them with cancel, delete and open.

import * as api from "./api.js";

const STORAGE = "wd-console-jobs";
const MAX_JOBS = 50;
const FINISHED = new Set(["completed", "failed", "cancelled", "gone"]);
export const STAGE_LABELS = {
  separating_vocals: "separating vocals",
  transcribing: "transcribing",
  aligning: "aligning words",
  diarizing: "finding speakers",
  post_processing: "punctuating",
  generating_output: "writing the result",
};

export const isFinished = (entry) => FINISHED.has(entry.state.status);

/** What a state looks like in one step of a job's history: its status, or its stage. */
function step(state) {
  if (state.status === "processing") return state.progress || "processing";
  return state.status;
}

export class JobList {
  constructor({ list, empty, live, onOpen, onChange, onProblem }) {
    this.list = list;
    this.empty = empty;
    this.live = live;
    this.onOpen = onOpen;
    this.onChange = onChange; // (entry) after every status change
    this.onProblem = onProblem; // (error | null): the API could not be reached, or is back
    this.entries = this.load();
    this.render();
  }

  load() {
    try {
      const stored = JSON.parse(localStorage.getItem(STORAGE) || "[]");
      return Array.isArray(stored) ? stored.filter((e) => e && typeof e.id === "string") : [];
    } catch {
      return [];
    }
  }

  save() {
    localStorage.setItem(STORAGE, JSON.stringify(this.entries.slice(0, MAX_JOBS)));
  }

  get(id) {
    return this.entries.find((e) => e.id === id);
  }

  add(id, file, state) {
    const entry = {
      id,
      filename: file.name || "audio",
      size: file.size,
      submittedAt: new Date().toISOString(),
      state: { status: state.status || "queued", position: state.position },
      history: [step(state)],
    };
    this.entries.unshift(entry);
    this.entries = this.entries.slice(0, MAX_JOBS);
    this.save();
    this.render();
    return entry;
  }

  update(entry, state) {
    const before = JSON.stringify(entry.state);
    entry.state = state;
    const last = entry.history[entry.history.length - 1];
    if (step(state) !== last) entry.history.push(step(state));
    if (JSON.stringify(state) !== before) {
      this.save();
      this.renderEntry(entry);
      this.announce(entry);
      this.onChange(entry);
    }
  }

  remove(entry) {
    this.entries = this.entries.filter((e) => e !== entry);
    this.save();
    this.render();
  }

  announce(entry) {
    const { status, error } = entry.state;
    if (status === "failed") this.live.textContent = `${entry.filename} failed: ${error}`;
    else if (status === "completed") this.live.textContent = `${entry.filename} is transcribed.`;
    else if (status === "cancelled") this.live.textContent = `${entry.filename} was cancelled.`;
  }

  /** One round of polling: every unfinished job's state. */
  async poll() {
    for (const entry of this.entries.filter((e) => !isFinished(e))) {
      try {
        this.update(entry, await api.job(entry.id));
        this.onProblem(null);
      } catch (error) {
        if (error instanceof api.ApiError && error.status === 404) {
          this.update(entry, { status: "gone", error: "The service no longer has this job (expired or deleted)." });
        } else if (error instanceof api.ApiError && error.status === 401) {
          this.onProblem(error);
          return;
        } else {
          this.onProblem(error);
          return;
        }
      }
    }
  }

  async cancelOrDelete(entry) {
    const finished = isFinished(entry);
    try {
      if (entry.state.status !== "gone") await api.deleteJob(entry.id);
    } catch (error) {
      if (!(error instanceof api.ApiError && error.status === 404)) {
        this.live.textContent = `Could not ${finished ? "delete" : "cancel"} ${entry.filename}: ${error.message}`;
        return;
      }
    }
    if (finished) {
      this.remove(entry);
      this.live.textContent = `${entry.filename} deleted.`;
    } else {
      this.live.textContent = `Cancelling ${entry.filename}…`;
      await this.poll();
    }
  }

  render() {
    this.list.replaceChildren(...this.entries.map((entry) => this.row(entry)));
    this.empty.hidden = this.entries.length > 0;
  }

  renderEntry(entry) {
    const old = this.list.querySelector(`[data-job-id="${CSS.escape(entry.id)}"]`);
    if (old) old.replaceWith(this.row(entry));
    else this.render();
  }

  row(entry) {
    const { status, progress, position, error } = entry.state;
    const li = document.createElement("li");
    li.className = `job status-${status}`;
    li.dataset.jobId = entry.id;
    li.dataset.status = status;

    const name = document.createElement("div");
    name.className = "job-name";
    name.textContent = entry.filename;
    const when = document.createElement("span");
    when.className = "muted small";
    when.textContent = ` ${new Date(entry.submittedAt).toLocaleString()} · ${entry.id.slice(0, 8)}`;
    name.append(when);

    const state = document.createElement("div");
    state.className = "job-state";
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = status.replace("_", " ");
    state.append(badge);
    const detail = document.createElement("span");
    detail.className = "job-detail";
    if (status === "processing") detail.textContent = STAGE_LABELS[progress] || progress || "";
    else if (status === "queued" && position !== undefined) detail.textContent = `${position} ahead`;
    else if (status === "failed" || status === "gone") detail.textContent = error || "unknown error";
    state.append(detail);
    if (status === "failed") detail.classList.add("error-text");

    const history = document.createElement("div");
    history.className = "job-history muted small";
    history.textContent = entry.history.map((s) => STAGE_LABELS[s] || s.replace("_", " ")).join(" → ");

    const actions = document.createElement("div");
    actions.className = "job-actions";
    if (status === "completed") {
      const open = document.createElement("button");
      open.type = "button";
      open.className = "open";
      open.textContent = "Open";
      open.setAttribute("aria-label", `Open the result of ${entry.filename}`);
      open.addEventListener("click", () => this.onOpen(entry));
      actions.append(open);
    }
    const finished = isFinished(entry);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = finished ? "delete secondary" : "cancel secondary";
    remove.textContent = finished ? "Delete" : "Cancel";
    remove.setAttribute("aria-label", `${remove.textContent} ${entry.filename}`);
    remove.addEventListener("click", () => this.cancelOrDelete(entry));
    actions.append(remove);

    li.append(name, state, history, actions);
    return li;
  }
}
