// What the Explorer knows of Orthanc's resource model: levels, titles, links.

import {formatDate, formatName, h} from "./dom.js";

export const LEVELS = {
  patients: {type: "Patient", noun: "patient", child: "studies", parent: null},
  studies: {type: "Study", noun: "study", child: "series", parent: "patients"},
  series: {type: "Series", noun: "series", child: "instances", parent: "studies"},
  instances: {type: "Instance", noun: "instance", child: null, parent: "series"},
};

export const COLLECTION_OF_TYPE = {Patient: "patients", Study: "studies", Series: "series", Instance: "instances"};

export function href(collection, id) {
  return `#/${collection}/${encodeURIComponent(id)}`;
}

export function resourceLink(collection, id, text) {
  return h("a", {href: href(collection, id)}, text);
}

/** A readable title of a resource from its main tags. */
export function title(collection, resource) {
  const tags = (resource && resource.MainDicomTags) || {};
  switch (collection) {
    case "patients":
      return formatName(tags.PatientName) || tags.PatientID || "(unnamed patient)";
    case "studies":
      return tags.StudyDescription || (tags.StudyDate ? `Study of ${formatDate(tags.StudyDate)}` : "")
        || tags.StudyID || "(study without description)";
    case "series": {
      const name = tags.SeriesDescription || (tags.SeriesNumber ? `Series ${tags.SeriesNumber}` : "(series)");
      return tags.Modality ? `${name} (${tags.Modality})` : name;
    }
    default: {
      const number = tags.InstanceNumber || resource.IndexInSeries;
      return number !== undefined && number !== null && number !== "" ? `Instance ${number}` : "Instance";
    }
  }
}

/** Main tags shown first, in this order; the others follow alphabetically. */
const PREFERRED = [
  "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDescription", "StudyDate", "StudyTime",
  "AccessionNumber", "StudyID", "ReferringPhysicianName", "InstitutionName", "SeriesDescription", "Modality",
  "SeriesNumber", "SeriesDate", "BodyPartExamined", "ProtocolName", "InstanceNumber", "SOPInstanceUID",
  "StudyInstanceUID", "SeriesInstanceUID",
];

/** [name, shown value] pairs of a resource's main tags (dates made readable). */
export function mainTagPairs(tags) {
  const names = Object.keys(tags || {});
  names.sort((a, b) => {
    const ia = PREFERRED.indexOf(a);
    const ib = PREFERRED.indexOf(b);
    if (ia >= 0 || ib >= 0) return (ia < 0 ? 999 : ia) - (ib < 0 ? 999 : ib);
    return a.localeCompare(b);
  });
  return names.map((name) => {
    const value = tags[name];
    const shown = /Date$/.test(name) ? formatDate(value) : value;
    return [spaced(name), typeof shown === "object" ? JSON.stringify(shown) : shown];
  });
}

/** "PatientBirthDate" → "Patient birth date". */
export function spaced(name) {
  const words = String(name).replace(/([A-Z]+)([A-Z][a-z]{2,})/g, "$1 $2").replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .split(" ");
  return words.map((w, i) => (i > 0 && /^[A-Z][a-z]+$/.test(w) ? w.toLowerCase() : w)).join(" ");
}

/** Sort instances by their number in the series. */
export function byInstanceNumber(a, b) {
  const na = Number(a.MainDicomTags?.InstanceNumber ?? a.IndexInSeries ?? 0);
  const nb = Number(b.MainDicomTags?.InstanceNumber ?? b.IndexInSeries ?? 0);
  return na - nb;
}
