// The result view: player and waveform, the transcript coloured per speaker and synced to playback,
// overlaps, speaker renaming (stored with the job on the server) and downloads.

import * as api from "./api.js";
import { Waveform } from "./waveform.js";

// Dark enough for text on white (contrast >= 4.5:1), and told apart by hue.
export const SPEAKER_COLORS = [
  "#1d4ed8", "#b91c1c", "#047857", "#9a3412", "#6d28d9", "#0e7490", "#a21caf", "#4d7c0f",
];
const UNKNOWN_COLOR = "#4b5563";
const EPSILON = 0.002;

const fmt = (seconds) => {
  const s = Math.max(0, seconds);
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
};

function speakerKey(speaker) {
  return speaker === null || speaker === undefined ? "unknown" : String(speaker);
}

/** Utterances of the result, or runs of one speaker's words when it has none. */
function utterancesOf(result) {
  if (Array.isArray(result.results.utterances) && result.results.utterances.length) {
    return result.results.utterances;
  }
  const words = result.results.channels?.[0]?.alternatives?.[0]?.words || [];
  const runs = [];
  for (const word of words) {
    const last = runs[runs.length - 1];
    if (last && last.speaker === word.speaker) {
      last.words.push(word);
      last.end = word.end;
    } else runs.push({ speaker: word.speaker, start: word.start, end: word.end, words: [word] });
  }
  return runs;
}

/** Where utterances of different speakers overlap in time. */
export function overlapsBetween(utterances) {
  const sorted = utterances.map((u, index) => ({ u, index })).sort((a, b) => a.u.start - b.u.start);
  const found = [];
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length && sorted[j].u.start < sorted[i].u.end; j++) {
      const a = sorted[i];
      const b = sorted[j];
      if (a.u.speaker === b.u.speaker) continue;
      const start = Math.max(a.u.start, b.u.start);
      const end = Math.min(a.u.end, b.u.end);
      if (end > start) found.push({ start, end, speakers: [a.u.speaker, b.u.speaker], utterances: [a.index, b.index] });
    }
  }
  return found;
}

export class ResultView {
  constructor(elements, announce) {
    this.el = elements;
    this.announce = announce;
    this.waveform = new Waveform(elements.canvas, elements.audio);
    this.words = [];
    this.wordElements = [];
    this.names = {};
    this.current = [];
    this.objectUrl = null;
    this.entry = null;
    const audio = elements.audio;
    const tick = () => {
      this.sync();
      if (!audio.paused) this.frame = requestAnimationFrame(tick);
    };
    audio.addEventListener("play", () => {
      cancelAnimationFrame(this.frame);
      this.frame = requestAnimationFrame(tick);
    });
    for (const name of ["timeupdate", "seeked", "loadedmetadata"]) audio.addEventListener(name, () => this.sync());
    elements.downloads.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-format]");
      if (button) this.download(button.dataset.format);
    });
    elements.reattach.addEventListener("change", () => {
      const file = elements.reattach.files[0];
      if (file && this.entry) {
        this.onFile(this.entry.id, file);
        this.attachAudio(file);
      }
    });
  }

  color(speaker) {
    const index = this.speakers.indexOf(speakerKey(speaker));
    return speaker === null || speaker === undefined || index < 0
      ? UNKNOWN_COLOR
      : SPEAKER_COLORS[index % SPEAKER_COLORS.length];
  }

  label(speaker) {
    if (speaker === null || speaker === undefined) return "Unknown speaker";
    return this.names[String(speaker)] || `Speaker ${speaker}`;
  }

  /** Show a completed job: `file` is the local audio, when this browser still has it. */
  async open(entry, file) {
    this.entry = entry;
    this.el.section.hidden = false;
    this.el.title.textContent = `Result: ${entry.filename}`;
    this.el.meta.textContent = "Loading the result…";
    const [result, names] = await Promise.all([api.result(entry.id), api.speakerNames(entry.id)]);
    this.result = result;
    this.names = { ...(result.results.speaker_names || {}), ...names.names };
    this.utterances = utterancesOf(result);
    const all = this.utterances.flatMap((u) => u.words.map((w) => ({ ...w, speaker: w.speaker ?? u.speaker })));
    this.speakers = [...new Set(all.map((w) => speakerKey(w.speaker)))].filter((k) => k !== "unknown")
      .sort((a, b) => Number(a) - Number(b));
    const duration = result.metadata?.duration || 0;
    const language = result.results.channels?.[0]?.detected_language;
    this.el.meta.textContent =
      `${fmt(duration)} · ${this.speakers.length} speaker${this.speakers.length === 1 ? "" : "s"} · ` +
      `${all.length} words · model ${result.metadata?.model_info?.name || "?"}` +
      (language ? ` · language ${language}` : "");
    this.overlaps = overlapsBetween(this.utterances);
    this.renderSpeakers();
    this.renderOverlaps(result.results.overlaps);
    this.renderTranscript();
    await this.attachAudio(file);
    this.el.title.focus({ preventScroll: true }); // keyboard users land on the result
  }

  async attachAudio(file) {
    const { audio } = this.el;
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = file ? URL.createObjectURL(file) : null;
    if (file) audio.src = this.objectUrl;
    else audio.removeAttribute("src");
    audio.hidden = !file;
    this.el.noAudio.hidden = Boolean(file);
    this.el.canvas.dataset.drawn = "false";
    const turns = this.utterances.map((u) => ({ start: u.start, end: u.end, color: this.color(u.speaker) }));
    await this.waveform.show(file, turns, this.result.metadata?.duration);
  }

  renderSpeakers() {
    const items = this.speakers.map((key) => {
      const li = document.createElement("li");
      li.style.setProperty("--spk", this.color(Number(key)));
      li.dataset.speaker = key;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.setAttribute("aria-hidden", "true");
      const words = this.utterances.filter((u) => speakerKey(u.speaker) === key)
        .reduce((n, u) => n + u.words.length, 0);
      const count = document.createElement("span");
      count.className = "muted small";
      count.textContent = ` ${words} words`;
      li.append(swatch, this.nameButton(Number(key)), count);
      return li;
    });
    this.el.speakers.replaceChildren(...items);
  }

  nameButton(speaker) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "speaker-name";
    button.dataset.speakerLabel = String(speaker);
    button.textContent = this.label(speaker);
    button.setAttribute("aria-label", `${this.label(speaker)}: rename`);
    button.title = "Rename this speaker";
    button.addEventListener("click", () => this.startRename(speaker, button));
    return button;
  }

  startRename(speaker, button) {
    const input = document.createElement("input");
    input.className = "rename";
    input.maxLength = 100;
    input.value = this.names[String(speaker)] || "";
    input.placeholder = `Speaker ${speaker}`;
    input.setAttribute("aria-label", `New name for speaker ${speaker} (Enter saves, Escape cancels)`);
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      input.replaceWith(button);
      if (save) await this.rename(speaker, input.value.trim());
      button.focus();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        finish(true);
      } else if (event.key === "Escape") finish(false);
    });
    input.addEventListener("blur", () => finish(true));
    button.replaceWith(input);
    input.focus();
    input.select();
  }

  async rename(speaker, name) {
    const key = String(speaker);
    if ((this.names[key] || "") === name) return;
    const names = { ...this.names, [key]: name };
    if (!name) delete names[key];
    try {
      const saved = await api.saveSpeakerNames(this.entry.id, names);
      this.names = saved.names;
    } catch (error) {
      this.announce(`Could not rename speaker ${speaker}: ${error.message}`, true);
      return;
    }
    for (const el of document.querySelectorAll(`[data-speaker-label="${key}"]`)) {
      el.textContent = this.label(speaker);
      el.setAttribute("aria-label", `${this.label(speaker)}: rename`);
    }
    this.announce(name ? `Speaker ${speaker} is now “${name}”.` : `Speaker ${speaker}'s name was removed.`);
  }

  renderOverlaps(fromResult) {
    const items = [];
    const listed = Array.isArray(fromResult) ? fromResult : [];
    for (const o of listed) {
      const li = document.createElement("li");
      const who = Array.isArray(o.speakers) ? o.speakers.map((s) => this.label(s)).join(" and ") : "";
      li.textContent = `${fmt(o.start)}–${fmt(o.end)}${who ? `: ${who}` : ""}`;
      items.push(li);
    }
    if (!listed.length) {
      for (const o of this.overlaps) {
        const li = document.createElement("li");
        li.textContent = `${fmt(o.start)}–${fmt(o.end)}: ${o.speakers.map((s) => this.label(s)).join(" and ")}`;
        items.push(li);
      }
    }
    this.overlapSpans = [...listed, ...this.overlaps];
    this.el.overlapsList.replaceChildren(...items);
    this.el.overlapsBox.hidden = items.length === 0;
  }

  renderTranscript() {
    const overlapping = new Set(this.overlaps.flatMap((o) => o.utterances));
    this.words = [];
    this.wordElements = [];
    const blocks = this.utterances.map((u, index) => {
      const block = document.createElement("article");
      block.className = "utterance";
      block.dataset.speaker = speakerKey(u.speaker);
      block.style.setProperty("--spk", this.color(u.speaker));
      const head = document.createElement("header");
      const time = document.createElement("button");
      time.type = "button";
      time.className = "time";
      time.textContent = fmt(u.start);
      time.setAttribute("aria-label", `Play from ${fmt(u.start)}`);
      time.addEventListener("click", () => this.seek(u.start));
      head.append(u.speaker === null || u.speaker === undefined ? this.unknownLabel() : this.nameButton(u.speaker), time);
      if (overlapping.has(index)) {
        block.classList.add("overlapping");
        const badge = document.createElement("span");
        badge.className = "overlap-badge";
        badge.textContent = "overlap";
        badge.title = "Another speaker talks at the same time";
        head.append(badge);
      }
      const text = document.createElement("p");
      for (const word of u.words) {
        const span = document.createElement("span");
        span.className = "word";
        span.textContent = word.punctuated_word || word.word;
        span.setAttribute("role", "button");
        span.tabIndex = this.words.length === 0 ? 0 : -1;
        span.dataset.index = String(this.words.length);
        span.dataset.start = String(word.start);
        if (this.overlapSpans.some((o) => word.start < o.end && o.start < word.end)) span.classList.add("in-overlap");
        this.words.push(word);
        this.wordElements.push(span);
        text.append(span, " ");
      }
      block.append(head, text);
      return block;
    });
    const container = this.el.transcript;
    container.replaceChildren(...blocks);
    container.onclick = (event) => {
      const span = event.target.closest(".word");
      if (span) this.activate(span);
    };
    container.onkeydown = (event) => this.keys(event);
  }

  unknownLabel() {
    const span = document.createElement("span");
    span.className = "speaker-name unknown";
    span.textContent = "Unknown speaker";
    return span;
  }

  activate(span) {
    this.focusWord(Number(span.dataset.index), false);
    this.seek(Number(span.dataset.start));
  }

  focusWord(index, focus = true) {
    const next = this.wordElements[Math.max(0, Math.min(this.wordElements.length - 1, index))];
    if (!next) return;
    for (const el of this.wordElements) if (el.tabIndex === 0) el.tabIndex = -1;
    next.tabIndex = 0;
    if (focus) next.focus();
  }

  keys(event) {
    const span = event.target.closest?.(".word");
    if (!span) return;
    const index = Number(span.dataset.index);
    const moves = { ArrowRight: index + 1, ArrowDown: index + 1, ArrowLeft: index - 1, ArrowUp: index - 1,
      Home: 0, End: this.wordElements.length - 1 };
    if (event.key in moves) {
      event.preventDefault();
      this.focusWord(moves[event.key]);
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.activate(span);
    }
  }

  seek(seconds) {
    const { audio } = this.el;
    if (audio.getAttribute("src")) audio.currentTime = seconds;
    this.sync(seconds);
  }

  /** Highlight the word(s) being spoken now. */
  sync(at) {
    const t = (at ?? this.el.audio.currentTime) + EPSILON;
    const now = [];
    this.words.forEach((w, i) => {
      if (w.start <= t && t < w.end + EPSILON) now.push(this.wordElements[i]);
    });
    for (const el of this.current) if (!now.includes(el)) {
      el.classList.remove("current");
      el.removeAttribute("aria-current");
    }
    for (const el of now) {
      el.classList.add("current");
      el.setAttribute("aria-current", "true");
    }
    this.current = now;
    this.waveform.draw();
  }

  async download(format) {
    const base = (this.entry.filename || "result").replace(/\.[^.]+$/, "");
    try {
      const blob = await api.download(this.entry.id, format);
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = `${base}.${format}`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      this.announce(`Downloaded ${link.download}.`);
    } catch (error) {
      this.announce(`Could not download ${format.toUpperCase()}: ${error.message}`, true);
    }
  }
}
