// Upload: files and folders by drag and drop (or the file pickers), one POST /instances per file with
// its own progress bar, a few at a time, then a summary. The queue outlives the page: leaving the
// Upload page does not stop the uploads, and coming back shows them.

import {get, seg, uploadFile} from "./api.js";
import {formatBytes, h} from "./dom.js";
import {href, title} from "./model.js";

const PARALLEL = 3;
const state = {queue: [], running: 0, batch: null};
let panel = null;

export function uploadView(root) {
  if (!panel) panel = buildPanel();
  root.append(h("h1", {}, "Upload DICOM files"), panel);
}

function buildPanel() {
  // the pickers are opened by real buttons; the inputs themselves stay out of the tab order
  const files = h("input", {type: "file", multiple: true, id: "upload-files", class: "sr-only", tabindex: "-1",
    "aria-hidden": "true"});
  const folder = h("input", {type: "file", multiple: true, webkitdirectory: true, id: "upload-folder",
    class: "sr-only", tabindex: "-1", "aria-hidden": "true"});
  const zone = h("div", {class: "dropzone", id: "dropzone"},
    h("p", {class: "dropzone-title"}, "Drop DICOM files or folders here"),
    h("p", {class: "muted"}, "ZIP archives of DICOM files are accepted too."),
    h("div", {class: "toolbar"},
      h("button", {type: "button", class: "btn btn-primary", onclick: () => files.click()}, "Choose files…"),
      h("button", {type: "button", class: "btn", onclick: () => folder.click()}, "Choose a folder…")),
    files, folder);
  const summary = h("div", {id: "upload-summary", role: "status", "aria-live": "polite"});
  const list = h("ol", {class: "upload-list", id: "upload-list", "aria-label": "Files being uploaded"});
  const picked = (input) => {
    enqueue([...input.files].map((file) => ({file, path: file.webkitRelativePath || file.name})), list, summary);
    input.value = "";
  };
  files.addEventListener("change", () => picked(files));
  folder.addEventListener("change", () => picked(folder));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    enqueue(await droppedFiles(event.dataTransfer), list, summary);
  });
  return h("div", {class: "upload"}, zone, summary, list);
}

/** The files of a drop, folders walked recursively (webkitGetAsEntry works in Chromium and Firefox). */
async function droppedFiles(transfer) {
  const entries = [...(transfer.items || [])].filter((item) => item.kind === "file")
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (!entries.length || entries.some((e) => !e)) {
    return [...transfer.files].map((file) => ({file, path: file.name}));
  }
  const out = [];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({file, path: prefix + file.name});
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const entry of entries) await walk(entry, "");
  return out;
}

function enqueue(items, list, summary) {
  if (!items.length) return;
  if (!state.batch || state.running === 0 && state.queue.length === 0) {
    state.batch = {total: 0, stored: 0, already: 0, failed: 0, done: 0, bytes: 0, patients: new Map()};
    list.replaceChildren();
  }
  for (const item of items) {
    const progress = h("progress", {max: 100, value: 0, "aria-label": `Upload of ${item.path}`});
    const status = h("span", {class: "upload-status"}, "Waiting");
    const row = h("li", {class: "upload-row"}, h("span", {class: "upload-name"}, item.path),
      h("span", {class: "muted"}, formatBytes(item.file.size)), progress, status);
    list.append(row);
    state.queue.push({...item, row, progress, status});
    state.batch.total += 1;
  }
  renderSummary(summary);
  pump(summary);
}

function pump(summary) {
  while (state.running < PARALLEL && state.queue.length) {
    const job = state.queue.shift();
    state.running += 1;
    run(job).finally(() => {
      state.running -= 1;
      state.batch.done += 1;
      renderSummary(summary);
      pump(summary);
    });
  }
}

async function run(job) {
  const batch = state.batch;
  job.status.textContent = "Uploading";
  try {
    const {status, answer} = await uploadFile(job.file, (fraction) => {
      job.progress.value = Math.round(fraction * 100);
    });
    job.progress.value = 100;
    const answers = Array.isArray(answer) ? answer : answer ? [answer] : [];
    if (status >= 200 && status < 300) {
      let fresh = 0;
      let already = 0;
      for (const a of answers) {
        if (a.Status === "AlreadyStored") already += 1;
        else fresh += 1;
        if (a.ParentPatient) batch.patients.set(a.ParentPatient, (batch.patients.get(a.ParentPatient) || 0) + 1);
      }
      batch.stored += fresh;
      batch.already += already;
      batch.bytes += job.file.size;
      job.status.textContent = already && !fresh ? "Already stored" : answers.length > 1
        ? `Stored ${answers.length} files` : "Stored";
      job.row.classList.add(already && !fresh ? "is-already" : "is-ok");
    } else {
      batch.failed += 1;
      const reason = answer && (answer.Details || answer.Message) ? (answer.Details || answer.Message) : `HTTP ${status}`;
      job.status.textContent = `Failed: ${reason}`;
      job.row.classList.add("is-failed");
    }
  } catch (error) {
    batch.failed += 1;
    job.status.textContent = `Failed: ${error.message}`;
    job.row.classList.add("is-failed");
  }
}

function renderSummary(summary) {
  const b = state.batch;
  if (!b) return;
  const finished = b.done === b.total;
  const parts = [`${b.done} of ${b.total} files processed`, `${b.stored} stored`, `${b.already} already stored`,
    `${b.failed} failed`];
  summary.replaceChildren(h("div", {class: `summary ${finished ? "is-finished" : ""}`},
    h("h2", {}, finished ? "Upload finished" : "Uploading…"),
    h("p", {class: "summary-counts"}, parts.join(" · ")),
    h("progress", {max: b.total, value: b.done, "aria-label": "Overall progress"}),
    finished && b.patients.size ? h("p", {}, "Patients received: ",
      [...b.patients.keys()].map((id, i) => [i ? ", " : "", patientLink(id)])) : null));
}

function patientLink(id) {
  const link = h("a", {href: href("patients", id)}, "patient");
  get(`patients/${seg(id)}`).then((p) => {
    link.textContent = title("patients", p);
  }).catch(() => {});
  return link;
}
