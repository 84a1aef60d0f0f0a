// Browsing: the patients list and the page of one patient, study, series or instance.

import {actionsToolbar} from "./actions.js";
import {ApiError, get, seg, system, url} from "./api.js";
import {attachmentsSection, labelsSection, metadataSection, previewSection, tagsSection} from "./details.js";
import {definitionList, formatDate, formatName, h, spinner, table} from "./dom.js";
import {LEVELS, byInstanceNumber, href, mainTagPairs, resourceLink, title} from "./model.js";

const PAGE = 100;

export async function patientsView(root) {
  const count = h("p", {class: "subtitle"});
  const list = h("div", {}, spinner());
  const more = h("button", {type: "button", class: "btn", hidden: true}, "Show more patients");
  root.append(h("div", {class: "page-head"}, h("h1", {}, "Patients"),
    h("div", {class: "toolbar"}, h("a", {class: "btn", href: "#/search"}, "Search…"),
      h("a", {class: "btn btn-primary", href: "#/upload"}, "Upload files…"))), count, list, more);
  get("statistics").then((s) => {
    count.textContent = `${s.CountPatients} patients, ${s.CountStudies} studies, ${s.CountSeries} series, `
      + `${s.CountInstances} instances`;
  }).catch(() => {});
  const rows = [];
  const load = async () => {
    more.disabled = true;
    const page = await get(`patients?expand&since=${rows.length}&limit=${PAGE}`);
    rows.push(...page);
    list.replaceChildren(patientsTable(rows));
    more.hidden = page.length < PAGE;
    more.disabled = false;
  };
  more.addEventListener("click", () => load().catch(showError(list)));
  await load().catch(showError(list));
}

function patientsTable(rows) {
  return table([
    {label: "Patient name", cell: (p) => resourceLink("patients", p.ID, title("patients", p))},
    {label: "Patient ID", cell: (p) => p.MainDicomTags.PatientID ?? ""},
    {label: "Birth date", cell: (p) => formatDate(p.MainDicomTags.PatientBirthDate)},
    {label: "Sex", cell: (p) => p.MainDicomTags.PatientSex ?? ""},
    {label: "Studies", class: "num", cell: (p) => String((p.Studies || []).length)},
  ], rows, {empty: "No patient is stored yet. Upload DICOM files to start."});
}

function showError(container) {
  return (error) => container.replaceChildren(h("p", {class: "error-box", role: "alert"}, String(error.message)));
}

/** The ancestors of a resource, from the patient down, as [collection, resource] pairs. */
async function ancestors(collection, id) {
  const parents = {studies: ["patient"], series: ["patient", "study"], instances: ["patient", "study", "series"]};
  const names = parents[collection] || [];
  const found = await Promise.all(names.map((name) => get(`${collection}/${seg(id)}/${name}`)));
  const collections = {patient: "patients", study: "studies", series: "series"};
  return names.map((name, i) => [collections[name], found[i]]);
}

export async function resourceView(root, collection, id) {
  root.append(spinner());
  let resource;
  let parents;
  let sys;
  try {
    [resource, parents, sys] = await Promise.all([get(`${collection}/${seg(id)}`), ancestors(collection, id),
      system()]);
  } catch (error) {
    const missing = error instanceof ApiError && error.status === 404;
    root.replaceChildren(h("h1", {}, missing ? `This ${LEVELS[collection].noun} does not exist` : "Error"),
      h("p", {}, missing ? "It may have been deleted. " : String(error.message), " ",
        h("a", {href: "#/patients"}, "Back to the patients")));
    return;
  }
  const level = LEVELS[collection];
  const crumbs = h("nav", {"aria-label": "Breadcrumb", class: "breadcrumb"}, h("ol", {},
    h("li", {}, h("a", {href: "#/patients"}, "Patients")),
    parents.map(([c, r]) => h("li", {}, resourceLink(c, r.ID, title(c, r)))),
    h("li", {}, h("span", {"aria-current": "page"}, title(collection, resource)))));
  const reload = () => {
    root.replaceChildren();
    resourceView(root, collection, id);
  };
  const head = h("div", {class: "page-head"},
    h("h1", {}, collection === "instances" ? null : [h("span", {class: "kind"}, level.type), " "],
      title(collection, resource)),
    actionsToolbar(collection, resource, sys, reload));
  const info = h("section", {class: "card", "aria-labelledby": "tags-h"},
    h("h2", {id: "tags-h"}, "Main DICOM tags"), definitionList(mainTagPairs(resource.MainDicomTags)),
    collection === "studies" && resource.PatientMainDicomTags
      ? [h("h3", {}, "Patient"), definitionList(mainTagPairs(resource.PatientMainDicomTags))] : null,
    collection === "instances" ? h("p", {}, h("a", {href: url(`instances/${seg(id)}/file`), download: `${id}.dcm`},
      "Download the DICOM file"), ` (${resource.FileSize ?? "?"} bytes)`) : null);
  root.replaceChildren(crumbs, head);
  const layout = h("div", {class: "columns"});
  root.append(layout);
  if (collection === "instances") {
    layout.append(previewSection(id), info);
  } else {
    layout.append(info);
  }
  if (level.child) root.append(childrenSection(collection, id));
  if (collection === "instances") root.append(tagsSection(id));
  root.append(...[metadataSection(collection, id, sys), attachmentsSection(collection, id),
    labelsSection(resource)].filter(Boolean));
}

function childrenSection(collection, id) {
  const child = LEVELS[collection].child;
  const heading = {studies: "Studies", series: "Series", instances: "Instances"}[child];
  const section = h("section", {class: "card", "aria-labelledby": "children-h"},
    h("h2", {id: "children-h"}, heading), spinner());
  get(`${collection}/${seg(id)}/${child}`).then((rows) => {
    section.querySelector("h2").textContent = `${heading} (${rows.length})`;
    section.querySelector(".loading").replaceWith(childTable(child, rows));
  }).catch((error) => section.querySelector(".loading").replaceWith(h("p", {class: "error-box"}, error.message)));
  return section;
}

function childTable(child, rows) {
  if (child === "studies") {
    rows.sort((a, b) => String(b.MainDicomTags.StudyDate || "").localeCompare(String(a.MainDicomTags.StudyDate || "")));
    return table([
      {label: "Study", cell: (s) => resourceLink("studies", s.ID, title("studies", s))},
      {label: "Date", cell: (s) => formatDate(s.MainDicomTags.StudyDate)},
      {label: "Accession number", cell: (s) => s.MainDicomTags.AccessionNumber ?? ""},
      {label: "Referring physician", cell: (s) => formatName(s.MainDicomTags.ReferringPhysicianName)},
      {label: "Series", class: "num", cell: (s) => String((s.Series || []).length)},
    ], rows);
  }
  if (child === "series") {
    rows.sort((a, b) => Number(a.MainDicomTags.SeriesNumber || 0) - Number(b.MainDicomTags.SeriesNumber || 0));
    return table([
      {label: "Series", cell: (s) => resourceLink("series", s.ID, s.MainDicomTags.SeriesDescription
        || `Series ${s.MainDicomTags.SeriesNumber ?? ""}`)},
      {label: "Modality", cell: (s) => s.MainDicomTags.Modality ?? ""},
      {label: "Number", class: "num", cell: (s) => s.MainDicomTags.SeriesNumber ?? ""},
      {label: "Date", cell: (s) => formatDate(s.MainDicomTags.SeriesDate)},
      {label: "Instances", class: "num", cell: (s) => String((s.Instances || []).length)},
    ], rows);
  }
  rows.sort(byInstanceNumber);
  return table([
    {label: "Instance", cell: (i) => resourceLink("instances", i.ID, title("instances", i))},
    {label: "Preview", class: "thumb-cell", cell: (i) => thumbnail(i)},
    {label: "SOP instance UID", class: "uid", cell: (i) => i.MainDicomTags.SOPInstanceUID ?? ""},
    {label: "Size", class: "num", cell: (i) => i.FileSize !== undefined ? `${Math.round(i.FileSize / 1024)} KB` : ""},
  ], rows);
}

/** A small preview that is only fetched when scrolled into view; nothing when it cannot be decoded. */
function thumbnail(instance) {
  const img = h("img", {class: "thumb", alt: "", loading: "lazy", decoding: "async", width: 64, height: 64,
    src: url(`instances/${seg(instance.ID)}/preview`)});
  img.addEventListener("error", () => img.replaceWith(h("span", {class: "muted"}, "—")));
  return h("a", {href: href("instances", instance.ID), tabindex: "-1", "aria-hidden": "true"}, img);
}
