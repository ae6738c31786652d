// The console's wiring: API connection and key, upload, the jobs list and the result view.
// Page options (for tests and slow links): ?poll_ms=N (status polling interval, default 1000) and
// ?direct_max_bytes=N (files larger than this use the presigned upload; default 4 MB, under
// Lambda's request cap).

import * as api from "./api.js";
import { JobList } from "./jobs.js";
import { ResultView } from "./result.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(100, Number(params.get("poll_ms")) || 1000);
const HEALTH_MS = 5000;
const DIRECT_MAX_BYTES = params.has("direct_max_bytes") ? Number(params.get("direct_max_bytes")) : 4_000_000;

const files = new Map(); // job id → the File uploaded from this page (for the player and waveform)
let chosen = null;

function announce(message, isError = false) {
  if (isError) showBanner(message);
  else $("notice").textContent = message;
}

function showBanner(message) {
  const banner = $("banner");
  banner.textContent = message;
  banner.hidden = !message;
}

function showKeyForm(why) {
  $("key-form").hidden = false;
  $("key-why").textContent = why;
  $("api-state").textContent = "API key needed";
  $("key-input").focus();
}

function problem(error) {
  if (!error) {
    if ($("banner").dataset.kind === "unreachable") {
      showBanner("");
      $("banner").dataset.kind = "";
      connect();
    }
    return;
  }
  if (error instanceof api.ApiError && error.status === 401) {
    showKeyForm(api.apiKey() ? `The API refused this key: ${error.message}` : "This service requires an API key.");
  } else if (error instanceof api.Unreachable) {
    $("banner").dataset.kind = "unreachable";
    showBanner(`${error.message}. Is the service running? Retrying…`);
    $("api-state").textContent = "API unreachable";
  } else {
    showBanner(error.message);
  }
}

let workers = 0;

function showHealth(health) {
  $("api-state").textContent =
    `Connected · ${health.queued_jobs} queued, ${health.processing_jobs} processing · ` +
    `${workers} worker${workers === 1 ? "" : "s"}`;
}

async function connect() {
  try {
    const [models, health] = await Promise.all([api.models(), api.health()]);
    fillOptions(models);
    workers = models.workers;
    $("key-form").hidden = true;
    showBanner("");
    $("banner").dataset.kind = "";
    showHealth(health);
    return true;
  } catch (error) {
    problem(error);
    return false;
  }
}

/** Every few seconds: the queue's counts, and whether the API still answers. */
async function healthLoop() {
  if ($("banner").dataset.kind === "unreachable") await connect();
  else if ($("key-form").hidden) {
    try {
      showHealth(await api.health());
    } catch (error) {
      problem(error);
    }
  }
  setTimeout(healthLoop, HEALTH_MS);
}

function fillOptions(models) {
  const select = $("opt-model");
  const chosenModel = select.value;
  const options = models.models.map((name) => {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name === models.default_whisper_model ? `${name} (default)` : name;
    return option;
  });
  const fallback = document.createElement("option");
  fallback.value = "";
  fallback.textContent = `Server default (${models.default_whisper_model})`;
  select.replaceChildren(fallback, ...options);
  select.value = models.models.includes(chosenModel) ? chosenModel : "";
  $("stemming-field").hidden = !models.stemming_available;
  $("opt-stemming").checked = models.default_stemming;
  $("stemming-field").dataset.default = String(models.default_stemming);
}

function choose(file) {
  chosen = file || null;
  $("file-name").textContent = chosen ? `${chosen.name} (${(chosen.size / 1e6).toFixed(1)} MB)` : "No file chosen";
}

function uploadOptions() {
  const options = {};
  const model = $("opt-model").value;
  if (model) options.whisper_model = model;
  const language = $("opt-language").value.trim();
  if (language) options.language = language;
  for (const [id, name] of [["opt-num", "num_speakers"], ["opt-min", "min_speakers"], ["opt-max", "max_speakers"]]) {
    const value = $(id).value.trim();
    if (value) options[name] = Number(value);
  }
  if (!$("stemming-field").hidden && String($("opt-stemming").checked) !== $("stemming-field").dataset.default) {
    options.stemming = $("opt-stemming").checked;
  }
  return options;
}

async function upload(event) {
  event.preventDefault();
  const text = $("upload-text");
  const bar = $("upload-progress");
  if (!chosen) {
    text.textContent = "Choose a file first.";
    $("file-input").focus();
    return;
  }
  const file = chosen;
  const presigned = file.size > DIRECT_MAX_BYTES;
  $("submit").disabled = true;
  bar.hidden = false;
  bar.value = 0;
  text.textContent = `Uploading ${file.name}…`;
  const onProgress = (loaded, total) => {
    bar.value = Math.round((loaded / total) * 100);
    text.textContent = `Uploading ${file.name}: ${bar.value}%`;
  };
  try {
    const options = uploadOptions();
    const created = presigned
      ? await api.submitPresigned(file, options, onProgress)
      : await api.submitDirect(file, options, onProgress);
    files.set(created.job_id, file);
    jobs.add(created.job_id, file, created);
    bar.value = 100;
    text.textContent = `${file.name} uploaded${presigned ? " (presigned upload)" : ""}: job ${created.job_id.slice(0, 8)} is queued.`;
    choose(null);
    $("file-input").value = "";
  } catch (error) {
    bar.hidden = true;
    text.textContent = `Upload failed: ${error.message}`;
    if (error instanceof api.ApiError && error.status === 401) problem(error);
  } finally {
    $("submit").disabled = false;
  }
}

const result = new ResultView(
  {
    section: $("result"),
    title: $("result-title"),
    meta: $("result-meta"),
    audio: $("audio"),
    canvas: $("waveform"),
    noAudio: $("no-audio"),
    reattach: $("reattach"),
    speakers: $("speakers"),
    overlapsBox: $("overlaps-box"),
    overlapsList: $("overlaps"),
    transcript: $("transcript"),
    downloads: $("downloads"),
  },
  announce,
);
result.onFile = (id, file) => files.set(id, file);

const jobs = new JobList({
  list: $("job-list"),
  empty: $("jobs-empty"),
  live: $("notice"),
  onOpen: async (entry) => {
    try {
      await result.open(entry, files.get(entry.id));
      $("result").scrollIntoView({ block: "start" });
    } catch (error) {
      announce(`Could not open the result of ${entry.filename}: ${error.message}`, true);
    }
  },
  onChange: () => {},
  onProblem: problem,
});

async function pollLoop() {
  if ($("banner").dataset.kind !== "unreachable") await jobs.poll();
  setTimeout(pollLoop, POLL_MS);
}

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  api.setApiKey($("key-input").value.trim());
  $("key-input").value = "";
  if (await connect()) announce("Key accepted.");
});
$("key-forget").addEventListener("click", () => {
  api.setApiKey("");
  announce("Key forgotten.");
  connect();
});
$("file-input").addEventListener("change", () => choose($("file-input").files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  choose(event.dataTransfer.files[0]);
});
$("upload-form").addEventListener("submit", upload);

connect().then(() => setTimeout(healthLoop, HEALTH_MS));
pollLoop();
document.body.dataset.ready = "true";
