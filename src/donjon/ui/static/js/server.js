// Server: what /system and /statistics say, and how full the storage is against its recycling limits.

import {available, get} from "./api.js";
import {definitionList, formatBytes, h, spinner, table} from "./dom.js";

export async function serverView(root) {
  root.append(h("h1", {}, "Server"), spinner());
  let sys;
  let stats;
  try {
    [sys, stats] = await Promise.all([get("system"), get("statistics")]);
  } catch (error) {
    root.replaceChildren(h("h1", {}, "Server"), h("p", {class: "error-box", role: "alert"}, error.message));
    return;
  }
  root.replaceChildren(h("h1", {}, "Server"), h("div", {class: "columns"},
    storageCard(sys, stats), countsCard(stats), systemCard(sys)));
  const networks = h("div", {class: "columns"});
  root.append(networks);
  for (const [path, label] of [["modalities", "DICOM modalities"], ["peers", "Orthanc peers"]]) {
    if (await available(path)) networks.append(await remotesCard(path, label));
  }
}

function usage(label, used, limit, unit, format) {
  if (!limit) {
    return h("div", {class: "usage"}, h("p", {}, `${label}: ${format(used)} `, h("span", {class: "muted"}, "(no limit)")));
  }
  const ratio = Math.min(used / limit, 1);
  const meter = h("meter", {min: 0, max: limit, low: limit * 0.8, high: limit * 0.95, optimum: 0, value: Math.min(used, limit),
    "aria-label": `${label} against the limit`});
  return h("div", {class: "usage"}, h("p", {}, `${label}: ${format(used)} of ${format(limit)} ${unit}`.trim(),
    ` (${Math.round(ratio * 100)}%)`), meter);
}

function storageCard(sys, stats) {
  const limitMb = Number(sys.MaximumStorageSize || 0);
  const usedMb = Number(stats.TotalDiskSize) / (1024 * 1024);
  const mode = sys.MaximumStorageMode === "Reject" ? "new instances are refused"
    : "the oldest unprotected patients are deleted (recycled)";
  return h("section", {class: "card", "aria-labelledby": "storage-h"}, h("h2", {id: "storage-h"}, "Storage"),
    usage("Disk use", limitMb ? usedMb : Number(stats.TotalDiskSize), limitMb || 0, "",
      limitMb ? (mb) => `${mb.toFixed(1)} MB` : formatBytes),
    usage("Patients", Number(stats.CountPatients), Number(sys.MaximumPatientCount || 0), "", String),
    h("p", {}, limitMb || sys.MaximumPatientCount ? `When a limit is reached, ${mode}.`
      : "No recycling limit is configured (MaximumStorageSize, MaximumPatientCount)."),
    definitionList([
      ["Size on disk", formatBytes(stats.TotalDiskSize)],
      ["Uncompressed size", formatBytes(stats.TotalUncompressedSize)],
      ["Storage compression", sys.StorageCompression ? "on" : "off"],
    ]));
}

function countsCard(stats) {
  return h("section", {class: "card", "aria-labelledby": "counts-h"}, h("h2", {id: "counts-h"}, "Content"),
    definitionList([
      ["Patients", String(stats.CountPatients)], ["Studies", String(stats.CountStudies)],
      ["Series", String(stats.CountSeries)], ["Instances", String(stats.CountInstances)],
    ]));
}

function systemCard(sys) {
  const yes = (v) => (v ? "yes" : "no");
  return h("section", {class: "card", "aria-labelledby": "system-h"}, h("h2", {id: "system-h"}, "System"),
    definitionList([
      ["Name", sys.Name || "(unnamed)"], ["Version", sys.Version], ["REST API version", String(sys.ApiVersion)],
      ["DICOM AET", sys.DicomAet], ["DICOM port", String(sys.DicomPort)], ["HTTP port", String(sys.HttpPort)],
      ["HTTP server secure", yes(sys.IsHttpServerSecure)], ["Overwrite instances", yes(sys.OverwriteInstances)],
      ["Check revisions", yes(sys.CheckRevisions)], ["Database", sys.DatabaseBackendPlugin || "SQLite (built in)"],
      ["User metadata", Object.keys(sys.UserMetadata || {}).join(", ") || "none"],
    ]));
}

async function remotesCard(path, label) {
  const section = h("section", {class: "card", "aria-labelledby": `${path}-h`}, h("h2", {id: `${path}-h`}, label));
  try {
    const expanded = await get(`${path}?expand`);
    const rows = Object.entries(expanded || {});
    section.append(table([
      {label: "Name", cell: ([name]) => name},
      {label: path === "peers" ? "URL" : "AET", cell: ([, v]) => (path === "peers" ? v.Url : v.AET) ?? ""},
      {label: path === "peers" ? "User" : "Host and port", cell: ([, v]) => (path === "peers" ? v.Username
        : `${v.Host ?? ""}:${v.Port ?? ""}`) ?? ""},
    ], rows, {empty: "None configured."}));
  } catch (error) {
    section.append(h("p", {class: "error-box"}, error.message));
  }
  return section;
}
