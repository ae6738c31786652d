// Drives this service with the official JavaScript SDKs, unmodified, only the base URL changed.
// Usage: node sdk.mjs <openai-json|openai-diarized|deepgram-file> <base URL> <WAV path>
// The API key comes from SPEECH_API_KEY (any value works when auth is off). Prints the SDK's
// parsed result as JSON on stdout; an SDK error exits non-zero with its message on stderr.
import { createReadStream, readFileSync } from "node:fs";

import { DeepgramClient } from "@deepgram/sdk";
import OpenAI from "openai";

const [mode, baseUrl, wav] = process.argv.slice(2);
if (!mode || !baseUrl || !wav) {
  console.error("usage: node sdk.mjs <openai-json|openai-diarized|deepgram-file> <base URL> <WAV path>");
  process.exit(2);
}
const apiKey = process.env.SPEECH_API_KEY || "any-key-auth-is-off";

function openai() {
  return new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey, timeout: 300_000, maxRetries: 0 });
}

const modes = {
  "openai-json": () =>
    openai().audio.transcriptions.create({
      file: createReadStream(wav),
      model: "whisper-1",
      response_format: "json",
    }),
  // OpenAI asks for chunking_strategy with the diarize model on inputs longer than 30 s.
  "openai-diarized": () =>
    openai().audio.transcriptions.create({
      file: createReadStream(wav),
      model: "gpt-4o-transcribe-diarize",
      response_format: "diarized_json",
      chunking_strategy: "auto",
    }),
  "deepgram-file": () => {
    const ws = baseUrl.replace(/^http/, "ws");
    const client = new DeepgramClient({
      apiKey,
      environment: { base: baseUrl, production: ws, agent: ws, agentRest: baseUrl },
      timeoutInSeconds: 300,
      maxRetries: 0,
    });
    return client.listen.v1.media.transcribeFile(readFileSync(wav), {
      model: "nova-3",
      diarize: true,
      punctuate: true,
      utterances: true,
    });
  },
};

if (!(mode in modes)) {
  console.error(`unknown mode ${mode}; expected one of ${Object.keys(modes).join(", ")}`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await modes[mode]()));
} catch (error) {
  console.error(`${error?.constructor?.name}: ${error?.message}`);
  if (error?.body !== undefined) console.error(JSON.stringify(error.body));
  process.exit(1);
}
