// What can be done to a resource: protect, download (as jobs), send, modify, anonymize, delete.

import {ApiError, available, del, get, post, put, request, saveBlob, seg} from "./api.js";
import {confirmDialog, dialog, field, h, notify} from "./dom.js";
import {LEVELS, title} from "./model.js";

export function actionsToolbar(collection, resource, sys, reload) {
  const id = resource.ID;
  const bar = h("div", {class: "toolbar", role: "group", "aria-label": "Actions"});
  if (collection === "patients") bar.append(protectedSwitch(id));
  bar.append(
    h("button", {type: "button", class: "btn", onclick: () => startArchive(collection, id, false)},
      "Download ZIP"),
    h("button", {type: "button", class: "btn", onclick: () => startArchive(collection, id, true)},
      "Download DICOMDIR"));
  const send = h("button", {type: "button", class: "btn", hidden: true,
    onclick: () => sendDialog(collection, resource)}, "Send…");
  bar.append(send);
  Promise.all([available("modalities"), available("peers")]).then(([m, p]) => {
    send.hidden = !(m || p);
  });
  bar.append(
    h("button", {type: "button", class: "btn", onclick: () => modifyDialog(collection, resource, false)},
      "Modify…"),
    h("button", {type: "button", class: "btn", onclick: () => modifyDialog(collection, resource, true)},
      "Anonymize…"),
    h("button", {type: "button", class: "btn btn-danger", onclick: () => deleteResource(collection, resource)},
      "Delete…"));
  return bar;
}

// -- protection -----------------------------------------------------------------------------------

/** The Protected/Unprotected switch of a patient: a real switch for assistive technologies. */
export function protectedSwitch(id) {
  const state = h("span", {class: "switch-state"}, "…");
  const button = h("button", {type: "button", role: "switch", class: "switch", "aria-checked": "false",
    disabled: true, id: "protected-switch"}, h("span", {class: "switch-track", "aria-hidden": "true"},
    h("span", {class: "switch-thumb"})), h("span", {class: "switch-label"}, "Protected"));
  const wrap = h("div", {class: "switch-wrap"}, button, state);
  const path = `patients/${seg(id)}/protected`;
  const show = (on) => {
    button.setAttribute("aria-checked", on ? "true" : "false");
    state.textContent = on ? "kept when the storage is full" : "may be recycled when the storage is full";
    button.disabled = false;
  };
  get(path).then((v) => show(String(v).trim() === "1")).catch(() => {
    state.textContent = "protection unknown";
  });
  button.addEventListener("click", async () => {
    const wanted = button.getAttribute("aria-checked") !== "true";
    button.disabled = true;
    try {
      await put(path, wanted ? "1" : "0");
      const now = String(await get(path)).trim() === "1";
      show(now);
      notify(now ? "The patient is protected from recycling." : "The patient is no longer protected.", "success");
    } catch (error) {
      button.disabled = false;
      notify(`Cannot change the protection: ${error.message}`, "error");
    }
  });
  return wrap;
}

// -- jobs -----------------------------------------------------------------------------------------

function goToJob(jobId, what) {
  notify(`${what} started.`, "success", {href: `#/jobs?job=${encodeURIComponent(jobId)}`, text: "See the job"});
  location.hash = `#/jobs?job=${encodeURIComponent(jobId)}`;
}

/** A ZIP or DICOMDIR is built by a job; the Jobs page offers its download when it is done. */
export async function startArchive(collection, id, media) {
  try {
    const job = await post(media ? "tools/create-media" : "tools/create-archive",
      {Resources: [id], Asynchronous: true});
    goToJob(job.ID, media ? "The DICOMDIR archive" : "The ZIP archive");
  } catch (error) {
    notify(`Cannot create the archive: ${error.message}`, "error");
  }
}

// -- send -----------------------------------------------------------------------------------------

async function targets() {
  const [hasModalities, hasPeers] = await Promise.all([available("modalities"), available("peers")]);
  const [modalities, peers] = await Promise.all([
    hasModalities ? get("modalities").catch(() => []) : [],
    hasPeers ? get("peers").catch(() => []) : [],
  ]);
  return {modalities: Array.isArray(modalities) ? modalities : Object.keys(modalities || {}),
    peers: Array.isArray(peers) ? peers : Object.keys(peers || {})};
}

export async function sendDialog(collection, resource) {
  const {modalities, peers} = await targets();
  if (!modalities.length && !peers.length) {
    await dialog({title: "Send", body: h("p", {}, "No DICOM modality and no Orthanc peer is configured "
      + "(DicomModalities, OrthancPeers)."), buttons: [{label: "Close", value: "cancel"}]});
    return;
  }
  const select = h("select", {name: "target", required: true},
    modalities.length ? h("optgroup", {label: "DICOM modalities"},
      modalities.map((m) => h("option", {value: `modalities/${m}`}, m))) : null,
    peers.length ? h("optgroup", {label: "Orthanc peers"}, peers.map((p) => h("option", {value: `peers/${p}`}, p)))
      : null);
  const data = await dialog({
    title: `Send this ${LEVELS[collection].noun}`, form: true,
    body: [h("p", {}, title(collection, resource)), field("Destination", select)],
    buttons: [{label: "Cancel", value: "cancel"}, {label: "Send", value: "send", kind: "primary"}],
    initialFocus: "select",
  });
  if (!data) return;
  const [kind, ...rest] = String(data.get("target")).split("/");
  const name = rest.join("/");
  try {
    const job = await post(`${kind}/${seg(name)}/store`, {Resources: [resource.ID], Asynchronous: true});
    goToJob(job.ID, `Sending to ${name}`);
  } catch (error) {
    notify(`Cannot send: ${error.message}`, "error");
  }
}

// -- modify / anonymize ---------------------------------------------------------------------------

/** "Tag=Value" lines into an object; tags by name or number. */
function parseReplacements(text) {
  const out = {};
  for (const line of String(text).split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`Expected Tag=Value, found: ${line}`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

function parseList(text) {
  return String(text).split(/[\s,]+/).map((t) => t.trim()).filter(Boolean);
}

export async function modifyDialog(collection, resource, anonymize) {
  const what = anonymize ? "Anonymize" : "Modify";
  const replace = h("textarea", {name: "replace", rows: 4, spellcheck: "false",
    placeholder: anonymize ? "PatientName=ANONYMOUS" : "StudyDescription=New description"});
  const remove = h("input", {type: "text", name: "remove", spellcheck: "false", placeholder: "InstitutionName, 0010,1000"});
  const keep = h("input", {type: "text", name: "keep", spellcheck: "false", placeholder: "StudyDescription"});
  const force = h("input", {type: "checkbox", name: "force"});
  const privateTags = h("input", {type: "checkbox", name: "private"});
  const body = [
    h("p", {}, anonymize
      ? "A new, anonymized copy is stored; the original is kept."
      : "A modified copy is stored; the original is kept unless you choose otherwise."),
    field(anonymize ? "Replace (one Tag=Value per line)" : "Replace (one Tag=Value per line)", replace),
    anonymize ? field("Keep (tags, separated by commas)", keep) : field("Remove (tags, separated by commas)", remove),
    h("div", {class: "check"}, privateTags, h("label", {for: (privateTags.id = `p-${Date.now()}`)},
      anonymize ? "Keep private tags" : "Remove private tags")),
    h("div", {class: "check"}, force, h("label", {for: (force.id = `f-${Date.now()}`)},
      "Force (allow changing identifiers such as PatientID)")),
  ];
  const data = await dialog({
    title: `${what} this ${LEVELS[collection].noun}`, body, form: true, initialFocus: "textarea",
    buttons: [{label: "Cancel", value: "cancel"}, {label: what, value: "go", kind: "primary"}],
  });
  if (!data) return;
  let request_;
  try {
    request_ = {Replace: parseReplacements(data.get("replace") || "")};
    if (anonymize) {
      request_.Keep = parseList(data.get("keep") || "");
      request_.KeepPrivateTags = data.get("private") === "on";
    } else {
      request_.Remove = parseList(data.get("remove") || "");
      request_.RemovePrivateTags = data.get("private") === "on";
    }
    if (data.get("force") === "on") request_.Force = true;
  } catch (error) {
    notify(error.message, "error");
    return;
  }
  const path = `${collection}/${seg(resource.ID)}/${anonymize ? "anonymize" : "modify"}`;
  try {
    if (collection === "instances") {
      // an instance is modified on the fly: the answer is the new file, nothing is stored
      const {blob} = await request("POST", path, {body: request_, blob: true});
      saveBlob(blob, `${resource.ID}-${anonymize ? "anonymized" : "modified"}.dcm`);
      notify(`The ${anonymize ? "anonymized" : "modified"} file is downloaded (nothing was stored).`, "success");
      return;
    }
    const job = await post(path, {...request_, Asynchronous: true});
    goToJob(job.ID, anonymize ? "Anonymization" : "Modification");
  } catch (error) {
    notify(`${what}: ${error.message}`, "error");
  }
}

// -- delete ---------------------------------------------------------------------------------------

export async function deleteResource(collection, resource) {
  const noun = LEVELS[collection].noun;
  const counts = {patients: ["Studies", "study", "studies"], studies: ["Series", "series", "series"],
    series: ["Instances", "instance", "instances"]};
  const child = counts[collection];
  const n = child ? (resource[child[0]] || []).length : 0;
  const extra = child ? ` and its ${n} ${n === 1 ? child[1] : child[2]}` : "";
  const ok = await confirmDialog(`Delete this ${noun}?`,
    `“${title(collection, resource)}”${extra} will be deleted from the server. This cannot be undone.`,
    `Delete ${noun}`);
  if (!ok) return;
  try {
    const answer = await del(`${collection}/${seg(resource.ID)}`);
    notify(`The ${noun} was deleted.`, "success");
    const remaining = answer && answer.RemainingAncestor;
    location.hash = remaining ? `#${remaining.Path}` : "#/patients";
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) location.hash = "#/patients";
    notify(`Cannot delete: ${error.message}`, "error");
  }
}
