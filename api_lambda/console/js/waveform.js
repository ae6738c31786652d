// A waveform of the local file (WebAudio decodeAudioData), speaker turns under it, and the playhead.

/** Min/max per column of the decoded audio (all channels mixed), or null when it can't be decoded. */
export async function peaks(file, columns) {
  const data = await file.arrayBuffer();
  let audio;
  try {
    audio = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(data);
  } catch {
    return null; // a format this browser can't decode: no waveform, the transcript still works
  }
  const length = audio.length;
  const channels = Array.from({ length: audio.numberOfChannels }, (_, i) => audio.getChannelData(i));
  const per = Math.max(1, Math.floor(length / columns));
  const result = [];
  for (let c = 0; c < columns; c++) {
    let low = 0;
    let high = 0;
    const end = Math.min(length, (c + 1) * per);
    for (let i = c * per; i < end; i++) {
      let v = 0;
      for (const channel of channels) v += channel[i];
      v /= channels.length;
      if (v < low) low = v;
      if (v > high) high = v;
    }
    result.push([low, high]);
  }
  return { peaks: result, duration: audio.duration };
}

export class Waveform {
  constructor(canvas, audio) {
    this.canvas = canvas;
    this.audio = audio;
    this.data = null;
    this.turns = [];
    this.duration = 0;
    canvas.addEventListener("click", (event) => {
      if (!this.duration) return;
      const box = canvas.getBoundingClientRect();
      audio.currentTime = ((event.clientX - box.left) / box.width) * this.duration;
    });
  }

  /** `turns`: [{start, end, color}] drawn as a band under the wave. */
  async show(file, turns, duration) {
    this.turns = turns;
    this.duration = duration || 0;
    this.data = null;
    const width = Math.max(300, Math.floor(this.canvas.clientWidth || 800));
    this.canvas.width = width * (window.devicePixelRatio || 1);
    this.canvas.height = 96 * (window.devicePixelRatio || 1);
    this.draw();
    if (!file) return false;
    const decoded = await peaks(file, width);
    if (!decoded) return false;
    this.data = decoded.peaks;
    this.duration = this.duration || decoded.duration;
    this.canvas.dataset.drawn = "true";
    this.draw();
    return true;
  }

  draw() {
    const ctx = this.canvas.getContext("2d");
    const { width, height } = this.canvas;
    const band = Math.round(height * 0.16);
    const middle = (height - band) / 2;
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "#f3f4f7";
    ctx.fillRect(0, 0, width, height);
    if (this.duration) {
      for (const turn of this.turns) {
        ctx.fillStyle = turn.color;
        const x = (turn.start / this.duration) * width;
        ctx.fillRect(x, height - band, Math.max(1, ((turn.end - turn.start) / this.duration) * width), band);
      }
    }
    if (this.data) {
      ctx.fillStyle = "#3b4252";
      const step = width / this.data.length;
      this.data.forEach(([low, high], i) => {
        const top = middle - high * middle;
        ctx.fillRect(i * step, top, Math.max(1, step - 0.2), Math.max(1, (high - low) * middle));
      });
    }
    if (this.duration) {
      const x = (this.audio.currentTime / this.duration) * width;
      ctx.fillStyle = "#c2185b";
      ctx.fillRect(x - 1, 0, 2, height);
    }
  }
}
