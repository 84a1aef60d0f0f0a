// Search: a form over /tools/find. The criteria live in the address (#/search?…), so results can be
// bookmarked and the Back button returns to them.

import {post} from "./api.js";
import {field, formatDate, formatName, h, spinner, table} from "./dom.js";
import {resourceLink, title} from "./model.js";

const LIMIT = 100;
const LEVEL_NAMES = ["Patient", "Study", "Series", "Instance"];
const LEVEL_LABELS = {Patient: "Patients", Study: "Studies", Series: "Series", Instance: "Instances"};
// which fields apply at which level (/tools/find accepts tags of the level and of its parents)
const FIELDS = [
  {name: "PatientName", label: "Patient name", levels: 0, hint: "Part of the name; * and ? are wildcards"},
  {name: "PatientID", label: "Patient ID", levels: 0},
  {name: "AccessionNumber", label: "Accession number", levels: 1},
  {name: "StudyDescription", label: "Study description", levels: 1, hint: "Part of the description"},
  {name: "Modality", label: "Modality", levels: 1, hint: "For example CT, MR, US"},
];

export async function searchView(root, query) {
  const level = LEVEL_NAMES.includes(query.get("level")) ? query.get("level") : "Study";
  const levelSelect = h("select", {name: "level"}, LEVEL_NAMES.map((l) =>
    h("option", {value: l, selected: l === level}, LEVEL_LABELS[l])));
  const inputs = FIELDS.map((f) => ({...f, input: h("input", {type: "text", name: f.name,
    value: query.get(f.name) || "", autocomplete: "off", spellcheck: "false"})}));
  const from = h("input", {type: "date", name: "from", value: isoDate(query.get("from"))});
  const to = h("input", {type: "date", name: "to", value: isoDate(query.get("to"))});
  const caseSensitive = h("input", {type: "checkbox", name: "case", id: "search-case",
    checked: query.get("case") === "1"});
  const form = h("form", {class: "search-form", role: "search"},
    field("Level", levelSelect),
    inputs.map((f) => field(f.label, f.input, f.hint)),
    h("fieldset", {class: "dates"}, h("legend", {}, "Study date"), field("From", from), field("To", to)),
    h("div", {class: "check"}, caseSensitive, h("label", {for: "search-case"}, "Case-sensitive names")),
    h("div", {class: "form-buttons"}, h("button", {type: "submit", class: "btn btn-primary"}, "Search"),
      h("button", {type: "reset", class: "btn"}, "Clear")));
  const applicable = () => {
    const depth = LEVEL_NAMES.indexOf(levelSelect.value);
    for (const f of inputs) f.input.disabled = f.levels > depth;
    from.disabled = to.disabled = depth < 1;
  };
  levelSelect.addEventListener("change", applicable);
  applicable();
  form.addEventListener("reset", () => {
    setTimeout(() => {
      location.hash = `#/search?level=${encodeURIComponent(levelSelect.value)}`;
    });
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams({level: levelSelect.value, run: "1"});
    for (const f of inputs) if (!f.input.disabled && f.input.value.trim()) params.set(f.name, f.input.value.trim());
    if (!from.disabled && from.value) params.set("from", from.value.replaceAll("-", ""));
    if (!to.disabled && to.value) params.set("to", to.value.replaceAll("-", ""));
    if (caseSensitive.checked) params.set("case", "1");
    const target = `#/search?${params}`;
    if (location.hash === target) location.hash = `${target}&again=${Date.now()}`;
    else location.hash = target;
  });
  const results = h("section", {"aria-labelledby": "results-h", class: "results", "aria-live": "polite"});
  root.append(h("h1", {}, "Search"), form, results);
  if (query.get("run") !== "1") return;
  results.append(h("h2", {id: "results-h"}, "Results"), spinner("Searching…"));
  const body = {Level: level, Query: buildQuery(level, query), Expand: true, Limit: LIMIT + 1,
    CaseSensitive: query.get("case") === "1"};
  try {
    const found = await post("tools/find", body);
    const shown = found.slice(0, LIMIT);
    results.replaceChildren(...[
      h("h2", {id: "results-h"}, `Results (${found.length > LIMIT ? `first ${LIMIT}` : found.length})`),
      found.length > LIMIT ? h("p", {class: "muted"}, "More resources match: refine the search.") : null,
      resultsTable(level, shown)].filter(Boolean));
  } catch (error) {
    results.replaceChildren(h("h2", {id: "results-h"}, "Results"), h("p", {class: "error-box", role: "alert"},
      error.message));
  }
}

function isoDate(dicom) {
  return dicom && /^\d{8}$/.test(dicom) ? `${dicom.slice(0, 4)}-${dicom.slice(4, 6)}-${dicom.slice(6)}` : "";
}

function buildQuery(level, query) {
  const q = {};
  const wild = (v) => (/[*?]/.test(v) ? v : `*${v}*`);
  for (const f of FIELDS) {
    const value = query.get(f.name);
    if (!value) continue;
    if (f.name === "Modality") q[level === "Study" ? "ModalitiesInStudy" : "Modality"] = value;
    else if (f.name === "PatientName" || f.name === "StudyDescription") q[f.name] = wild(value);
    else q[f.name] = value;
  }
  const from = query.get("from") || "";
  const to = query.get("to") || "";
  if (from || to) q.StudyDate = from === to ? from : `${from}-${to}`;
  return q;
}

function resultsTable(level, rows) {
  const empty = "Nothing matches these criteria.";
  if (level === "Patient") {
    return table([
      {label: "Patient name", cell: (r) => resourceLink("patients", r.ID, title("patients", r))},
      {label: "Patient ID", cell: (r) => r.MainDicomTags.PatientID ?? ""},
      {label: "Birth date", cell: (r) => formatDate(r.MainDicomTags.PatientBirthDate)},
      {label: "Studies", class: "num", cell: (r) => String((r.Studies || []).length)},
    ], rows, {empty});
  }
  if (level === "Study") {
    return table([
      {label: "Study", cell: (r) => resourceLink("studies", r.ID, title("studies", r))},
      {label: "Patient", cell: (r) => resourceLink("patients", r.ParentPatient,
        formatName(r.PatientMainDicomTags?.PatientName) || r.PatientMainDicomTags?.PatientID || "(patient)")},
      {label: "Patient ID", cell: (r) => r.PatientMainDicomTags?.PatientID ?? ""},
      {label: "Date", cell: (r) => formatDate(r.MainDicomTags.StudyDate)},
      {label: "Accession number", cell: (r) => r.MainDicomTags.AccessionNumber ?? ""},
      {label: "Series", class: "num", cell: (r) => String((r.Series || []).length)},
    ], rows, {empty});
  }
  if (level === "Series") {
    return table([
      {label: "Series", cell: (r) => resourceLink("series", r.ID, title("series", r))},
      {label: "Study", cell: (r) => resourceLink("studies", r.ParentStudy, "Open the study")},
      {label: "Date", cell: (r) => formatDate(r.MainDicomTags.SeriesDate)},
      {label: "Instances", class: "num", cell: (r) => String((r.Instances || []).length)},
    ], rows, {empty});
  }
  return table([
    {label: "Instance", cell: (r) => resourceLink("instances", r.ID, title("instances", r))},
    {label: "Series", cell: (r) => resourceLink("series", r.ParentSeries, "Open the series")},
    {label: "SOP instance UID", class: "uid", cell: (r) => r.MainDicomTags.SOPInstanceUID ?? ""},
  ], rows, {empty});
}
