// Jobs: every job of the server with its live progress (polled each second while this page is open),
// and the actions its state allows: pause, resume, cancel, resubmit; the download of a finished archive.

import {get, post, seg, url} from "./api.js";
import {formatBytes, formatTimestamp, h, notify} from "./dom.js";
import {COLLECTION_OF_TYPE, href} from "./model.js";

const POLL_MS = 1000;
const ACTIONS = {
  Pending: ["pause", "cancel"], Retry: ["pause", "cancel"], Running: ["pause", "cancel"],
  Paused: ["resume", "cancel"], Failure: ["resubmit"], Success: [],
};
const ARCHIVE_TYPES = new Set(["Archive", "Media"]);

export function jobsView(root, query) {
  const highlight = query.get("job");
  const tbody = h("tbody", {});
  const tableEl = h("table", {class: "data jobs"},
    h("caption", {class: "sr-only"}, "Jobs, most recent first"),
    h("thead", {}, h("tr", {}, ["Job", "State", "Progress", "Created", "Details", "Actions"]
      .map((c) => h("th", {scope: "col"}, c)))), tbody);
  const empty = h("p", {class: "empty"}, "No job yet. Downloads, sends, modifications and anonymizations run as jobs.");
  const note = h("p", {class: "muted"}, "Updated every second while this page is open.");
  root.append(h("h1", {}, "Jobs"), note, h("div", {class: "table-wrap"}, tableEl), empty);
  const rows = new Map();
  let timer = null;
  let stopped = false;
  let scrolled = false;

  const refresh = async () => {
    let jobs;
    try {
      jobs = await get("jobs?expand");
    } catch (error) {
      note.textContent = `Cannot read the jobs: ${error.message}`;
      return;
    }
    if (stopped) return;
    jobs.sort((a, b) => String(b.CreationTime).localeCompare(String(a.CreationTime)));
    empty.hidden = jobs.length > 0;
    tableEl.hidden = jobs.length === 0;
    const seen = new Set();
    jobs.forEach((job, index) => {
      seen.add(job.ID);
      let row = rows.get(job.ID);
      if (!row) {
        row = makeRow(job, refresh);
        rows.set(job.ID, row);
        if (job.ID === highlight) row.tr.classList.add("highlight");
      }
      updateRow(row, job);
      if (tbody.children[index] !== row.tr) tbody.insertBefore(row.tr, tbody.children[index] || null);
    });
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        rows.delete(id);
      }
    }
    if (highlight && !scrolled && rows.has(highlight)) {
      rows.get(highlight).tr.scrollIntoView({block: "nearest"});
      scrolled = true;
    }
  };
  const loop = async () => {
    await refresh();
    if (!stopped) timer = setTimeout(loop, POLL_MS);
  };
  loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function makeRow(job, refresh) {
  const cells = {
    job: h("th", {scope: "row"}), state: h("td", {}), progress: h("td", {}), created: h("td", {}),
    details: h("td", {class: "details"}), actions: h("td", {class: "actions"}),
  };
  const tr = h("tr", {dataset: {job: job.ID}}, Object.values(cells));
  cells.job.append(h("span", {class: "job-type"}, job.Type), h("br"), h("span", {class: "mono muted"},
    job.ID.slice(0, 8)));
  const bar = h("progress", {max: 100, value: 0, "aria-label": `Progress of the ${job.Type} job`});
  const pct = h("span", {class: "pct"});
  cells.progress.append(bar, " ", pct);
  return {tr, cells, bar, pct, key: "", refresh};
}

function updateRow(row, job) {
  row.bar.value = job.Progress ?? 0;
  row.pct.textContent = `${job.Progress ?? 0}%`;
  row.tr.dataset.state = job.State;
  const key = JSON.stringify([job.State, job.ErrorCode, job.Content, job.CompletionTime]);
  if (key === row.key) return;
  row.key = key;
  row.cells.state.replaceChildren(h("span", {class: `badge state-${job.State.toLowerCase()}`}, job.State));
  row.cells.created.replaceChildren(formatTimestamp(job.CreationTime));
  row.cells.details.replaceChildren(...details(job));
  const buttons = (ACTIONS[job.State] || []).map((action) => h("button", {type: "button", class: "btn btn-small",
    onclick: () => act(job, action, row.refresh)}, `${action[0].toUpperCase()}${action.slice(1)}`));
  if (job.State === "Success" && ARCHIVE_TYPES.has(job.Type)) {
    buttons.unshift(h("a", {class: "btn btn-small btn-primary", href: url(`jobs/${seg(job.ID)}/archive`),
      download: ""}, job.Type === "Media" ? "Download DICOMDIR" : "Download ZIP"));
  }
  row.cells.actions.replaceChildren(...buttons);
}

function peerLabel(peer) {
  if (Array.isArray(peer)) return peer[0];
  if (peer && typeof peer === "object") return peer.Url || peer.Name || "peer";
  return peer;
}

function details(job) {
  const out = [];
  const content = job.Content || {};
  if (job.State === "Failure") {
    out.push(h("span", {class: "error-text"}, job.ErrorDescription || "Failed"),
      job.ErrorDetails ? h("span", {class: "muted"}, ` — ${job.ErrorDetails}`) : null);
  }
  if (content.Description) out.push(h("div", {}, content.Description));
  if (content.InstancesCount !== undefined) out.push(h("div", {}, `${content.InstancesCount} instances`));
  if (content.ArchiveSize !== undefined) out.push(h("div", {}, `Archive: ${formatBytes(content.ArchiveSize)}`));
  if (content.RemoteAet || content.Peer) {
    out.push(h("div", {}, `To ${content.RemoteAet || peerLabel(content.Peer)}`));
  }
  if (content.Type && content.ID && COLLECTION_OF_TYPE[content.Type]) {
    out.push(h("div", {}, h("a", {href: href(COLLECTION_OF_TYPE[content.Type], content.ID)},
      `Open the new ${content.Type.toLowerCase()}`)));
  }
  if (content.FailedInstancesCount) out.push(h("div", {class: "error-text"}, `${content.FailedInstancesCount} failed`));
  if (job.CompletionTime) out.push(h("div", {class: "muted"}, `Done ${formatTimestamp(job.CompletionTime)}`));
  return out.filter(Boolean);
}

async function act(job, action, refresh) {
  try {
    await post(`jobs/${seg(job.ID)}/${action}`, {});
    notify(`Job ${job.ID.slice(0, 8)}: ${action} requested.`, "success");
  } catch (error) {
    notify(`Cannot ${action} the job: ${error.message}`, "error");
  }
  await refresh();
}
