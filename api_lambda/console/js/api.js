// Calls to the service's API, with the API key (from session storage) when one is set.
// Errors come back as ApiError with the server's message, or as Unreachable when there is no answer.

const KEY_STORAGE = "wd-console-api-key";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class Unreachable extends Error {}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Token ${key}` } : {};
}

/** The message of an error body: `{"detail": "..."}`, FastAPI's validation list, or Deepgram's shape. */
export function errorMessage(status, text) {
  try {
    const body = JSON.parse(text);
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
    if (body.err_msg) return body.err_msg;
  } catch {
    /* not JSON */
  }
  return text ? `HTTP ${status}: ${text.slice(0, 200)}` : `HTTP ${status}`;
}

async function call(method, path, { json, accept } = {}) {
  const headers = { ...authHeaders() };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  if (accept) headers.Accept = accept;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
    });
  } catch (error) {
    throw new Unreachable(`Can't reach the API at ${location.origin}: ${error.message}`);
  }
  if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, await response.text()));
  return response;
}

export const getJson = async (path) => (await call("GET", path)).json();
export const sendJson = async (method, path, json) => (await call(method, path, { json })).json();
export const getBlob = async (path) => (await call("GET", path)).blob();

export const health = () => getJson("/health");
export const models = () => getJson("/models");
export const job = (id) => getJson(`/jobs/${encodeURIComponent(id)}`);
export const result = (id) => getJson(`/jobs/${encodeURIComponent(id)}/result`);
export const deleteJob = (id) => sendJson("DELETE", `/jobs/${encodeURIComponent(id)}`);
export const speakerNames = (id) => getJson(`/jobs/${encodeURIComponent(id)}/speakers`);
export const saveSpeakerNames = (id, names) =>
  sendJson("PUT", `/jobs/${encodeURIComponent(id)}/speakers`, { names });
export const download = (id, format) =>
  getBlob(`/jobs/${encodeURIComponent(id)}/result?format=${encodeURIComponent(format)}`);

/** One request with upload progress (fetch has none): resolves to the parsed JSON answer. */
function xhr(method, url, body, { headers = {}, onProgress, withKey = true } = {}) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(method, url);
    const all = withKey ? { ...authHeaders(), ...headers } : headers;
    for (const [name, value] of Object.entries(all)) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded, event.total);
    };
    request.onerror = () => reject(new Unreachable(`Can't reach ${new URL(url, location.href).origin}`));
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) {
        try {
          resolve(request.responseText ? JSON.parse(request.responseText) : {});
        } catch {
          resolve({});
        }
      } else {
        reject(new ApiError(request.status, errorMessage(request.status, request.responseText)));
      }
    };
    request.send(body);
  });
}

/** `POST /jobs` multipart: the file and the options, with progress. */
export function submitDirect(file, options, onProgress) {
  const form = new FormData();
  for (const [name, value] of Object.entries(options)) form.append(name, String(value));
  form.append("file", file, file.name);
  return xhr("POST", "/jobs", form, { onProgress });
}

/** The presigned path for large files: `POST /uploads`, PUT the file to S3, `POST /jobs {upload_id}`. */
export async function submitPresigned(file, options, onProgress) {
  // A type the browser doesn't know is sent as octet-stream (S3 would otherwise store none).
  const request = {
    ...options,
    filename: file.name || "audio",
    size_bytes: file.size,
    content_type: file.type || "application/octet-stream",
  };
  const upload = await sendJson("POST", "/uploads", request);
  await xhr(upload.put.method || "PUT", upload.put.url, file, {
    headers: upload.put.headers || {},
    onProgress,
    withKey: false, // the URL is signed; S3 must not get the API key
  });
  try {
    return await sendJson("POST", "/jobs", { upload_id: upload.upload_id });
  } catch (error) {
    // The upload's S3 event may have started the job first: it is queued or further along.
    if (error instanceof ApiError && error.status === 409 && !/no upload yet/.test(error.message)) {
      return { job_id: upload.job_id, status: "queued" };
    }
    throw error;
  }
}
