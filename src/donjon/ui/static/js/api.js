// The REST API, relative to this page (…/app/explorer.html → …/), so that the Explorer also works
// behind a reverse proxy that adds a path prefix. Basic-auth credentials are the browser's own.

export const BASE = new URL("../", document.baseURI);

export function url(path) {
  return new URL(path.replace(/^\/+/, ""), BASE).href;
}

/** A path segment from a server value (an ID, a name): always encoded. */
export function seg(value) {
  return encodeURIComponent(String(value));
}

export class ApiError extends Error {
  constructor(status, body, path) {
    super(ApiError.describe(status, body, path));
    this.status = status;
    this.body = body;
    this.path = path;
  }

  static describe(status, body, path) {
    if (body && typeof body === "object") {
      const parts = [body.Message || body.HttpError || `HTTP ${status}`];
      if (body.Details) parts.push(body.Details);
      return parts.join(": ");
    }
    return `HTTP ${status} on ${path}`;
  }
}

async function parse(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }
  return response.text();
}

/** One request; JSON bodies are sent as JSON; errors raise ApiError with Orthanc's message. */
export async function request(method, path, {body, headers = {}, blob = false} = {}) {
  const init = {method, headers: {...headers}, credentials: "same-origin"};
  if (body !== undefined) {
    if (typeof body === "string" || body instanceof Blob || body instanceof ArrayBuffer) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  const response = await fetch(url(path), init);
  if (!response.ok) {
    let detail = null;
    try {
      detail = await parse(response);
    } catch {
      detail = null;
    }
    throw new ApiError(response.status, detail, path);
  }
  if (blob) return {blob: await response.blob(), response};
  return parse(response);
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, {body: body ?? {}});
export const put = (path, body, headers) => request("PUT", path, {body, headers});
export const del = (path) => request("DELETE", path);

let routeTable = null;

/** The routes the server answers (`/app/api-routes.json`, made by Donjon from its router). */
function routes() {
  if (!routeTable) {
    routeTable = fetch(url("app/api-routes.json"), {credentials: "same-origin"})
      .then((r) => (r.ok ? r.json() : null))
      .then((body) => (body && body.Routes ? body.Routes : null))
      .catch(() => null);
  }
  return routeTable;
}

const probed = new Map();

/**
 * Whether a GET route answers, e.g. available("peers"): features whose routes other work adds later
 * appear by themselves. The route table avoids probing (a 404 is an error in the browser's console).
 */
export async function available(path, method = "GET") {
  const table = await routes();
  if (table) return (table[`/${path.replace(/^\/+/, "")}`] || []).includes(method);
  if (!probed.has(path)) {
    probed.set(path, fetch(url(path), {credentials: "same-origin"}).then((r) => r.ok).catch(() => false));
  }
  return probed.get(path);
}

let systemInfo = null;

/** `/system`, read once per page load (names, limits, user metadata). */
export function system() {
  if (!systemInfo) systemInfo = get("system").catch((e) => {
    systemInfo = null;
    throw e;
  });
  return systemInfo;
}

/**
 * POST one file to /instances with upload progress (fetch cannot report it, XMLHttpRequest can).
 * Resolves with {status, answer}; never rejects for an HTTP error, only for a network failure.
 */
export function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url("instances"));
    xhr.withCredentials = true;
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let answer = null;
      try {
        answer = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        answer = null;
      }
      resolve({status: xhr.status, answer});
    });
    xhr.addEventListener("error", () => reject(new Error("Network error")));
    xhr.addEventListener("abort", () => reject(new Error("Upload aborted")));
    xhr.setRequestHeader("Content-Type", "application/dicom");
    xhr.send(file);
  });
}

/** Start a download of a same-origin URL (the browser keeps its credentials). */
export function download(href, filename = "") {
  const a = document.createElement("a");
  a.href = href;
  if (filename) a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
}

/** Save a Blob as a file (answers of POST routes, such as a modified instance). */
export function saveBlob(blob, filename) {
  const href = URL.createObjectURL(blob);
  download(href, filename);
  setTimeout(() => URL.revokeObjectURL(href), 60000);
}
