// The detail sections of a resource page: image preview, DICOM tags, metadata, attachments, labels.

import {ApiError, del, get, put, request, seg, url} from "./api.js";
import {confirmDialog, field, formatBytes, h, notify, spinner, table} from "./dom.js";

// -- preview --------------------------------------------------------------------------------------

export function previewSection(id) {
  const figure = h("figure", {class: "preview"});
  const status = h("p", {class: "muted", role: "status"});
  const section = h("section", {class: "card", "aria-labelledby": "preview-h"},
    h("h2", {id: "preview-h"}, "Preview"), figure, status);
  let objectUrl = null;
  const show = async (frame, count) => {
    status.textContent = "Rendering…";
    try {
      const path = count > 1 ? `instances/${seg(id)}/frames/${frame}/preview` : `instances/${seg(id)}/preview`;
      const {blob} = await request("GET", path, {blob: true});
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = URL.createObjectURL(blob);
      const img = figure.querySelector("img") || figure.appendChild(h("img", {alt: ""}));
      img.src = objectUrl;
      img.alt = count > 1 ? `Frame ${frame + 1} of ${count}` : "Image of this instance";
      status.textContent = count > 1 ? `Frame ${frame + 1} of ${count}` : "";
    } catch (error) {
      figure.replaceChildren();
      status.textContent = error instanceof ApiError && error.status === 415
        ? "No preview: the server cannot decode the pixel data of this instance (compressed transfer syntax "
          + "without a decoder, or no image at all)."
        : `No preview: ${error.message}`;
    }
  };
  get(`instances/${seg(id)}/frames`).then((frames) => {
    const count = Array.isArray(frames) ? frames.length : 1;
    if (count > 1) {
      const slider = h("input", {type: "range", min: 1, max: count, value: 1, step: 1});
      slider.addEventListener("change", () => show(Number(slider.value) - 1, count));
      section.insertBefore(field("Frame", slider, `${count} frames: use the arrow keys`), status);
    }
    return show(0, count);
  }).catch(() => show(0, 1));
  return section;
}

// -- tags -----------------------------------------------------------------------------------------

/** The DICOM-as-JSON tags of an instance (Orthanc's "full" format), sequences as nested tables. */
export function tagsSection(id) {
  const filter = h("input", {type: "search", placeholder: "Tag, name or value", autocomplete: "off"});
  const holder = h("div", {class: "tags-holder"}, spinner());
  const section = h("section", {class: "card", "aria-labelledby": "dicomtags-h"},
    h("div", {class: "section-head"}, h("h2", {id: "dicomtags-h"}, "DICOM tags"),
      field("Filter the tags", filter)), holder);
  get(`instances/${seg(id)}/tags`).then((tags) => {
    const tbl = tagsTable(tags, 0);
    holder.replaceChildren(tbl);
    filter.addEventListener("input", () => {
      const needle = filter.value.trim().toLowerCase();
      for (const row of tbl.querySelectorAll(":scope > tbody > tr")) {
        row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
      }
    });
  }).catch((error) => holder.replaceChildren(h("p", {class: "error-box"}, error.message)));
  return section;
}

function tagsTable(tags, depth) {
  return h("table", {class: `data tags depth-${Math.min(depth, 3)}`},
    depth === 0 ? h("caption", {class: "sr-only"}, "DICOM tags of the instance") : null,
    h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Tag"), h("th", {scope: "col"}, "Name"),
      h("th", {scope: "col"}, "Value"))),
    h("tbody", {}, Object.entries(tags).map(([tag, entry]) => h("tr", {},
      h("th", {scope: "row", class: "mono"}, tag), h("td", {}, entry.Name ?? ""),
      h("td", {class: "value"}, tagValue(entry, depth))))));
}

function tagValue(entry, depth) {
  switch (entry.Type) {
    case "Sequence": {
      const items = entry.Value || [];
      return h("details", {}, h("summary", {}, `Sequence of ${items.length} item${items.length === 1 ? "" : "s"}`),
        items.map((item, i) => h("div", {class: "seq-item"}, h("p", {class: "muted"}, `Item ${i + 1}`),
          tagsTable(item, depth + 1))));
    }
    case "Null":
      return h("span", {class: "muted"}, "(empty)");
    case "TooLong":
      return h("span", {class: "muted"}, "(too long to show)");
    case "Binary":
      return h("span", {class: "muted"}, "(binary)");
    default:
      return String(entry.Value ?? "");
  }
}

// -- metadata -------------------------------------------------------------------------------------

export function metadataSection(collection, id, sys) {
  const holder = h("div", {}, spinner());
  const section = h("section", {class: "card", "aria-labelledby": "metadata-h"},
    h("h2", {id: "metadata-h"}, "Metadata"), holder);
  const userKeys = Object.keys((sys && sys.UserMetadata) || {}).sort();
  const load = async () => {
    const values = await get(`${collection}/${seg(id)}/metadata?expand`);
    const core = Object.entries(values).filter(([k]) => !userKeys.includes(k)).sort(([a], [b]) => a.localeCompare(b));
    holder.replaceChildren(...[
      table([{label: "Name", cell: ([k]) => k}, {label: "Value", class: "value", cell: ([, v]) => String(v)}],
        core, {empty: "No metadata."}),
      userKeys.length ? userMetadataEditor(collection, id, userKeys, values, load, sys) : null].filter(Boolean));
  };
  load().catch((error) => holder.replaceChildren(h("p", {class: "error-box"}, error.message)));
  return section;
}

function userMetadataEditor(collection, id, keys, values, reload, sys) {
  return h("div", {class: "user-metadata"}, h("h3", {}, "User metadata"),
    h("p", {class: "muted"}, "Keys named in the configuration (UserMetadata)."),
    keys.map((key) => {
      const input = h("input", {type: "text", value: values[key] ?? "", name: key, dataset: {key}});
      const path = `${collection}/${seg(id)}/metadata/${seg(key)}`;
      const save = h("button", {type: "submit", class: "btn btn-primary"}, "Save");
      const remove = h("button", {type: "button", class: "btn", disabled: !(key in values)}, "Remove");
      const form = h("form", {class: "inline-form", dataset: {metadata: key}}, field(key, input), save, remove);
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
          await put(path, input.value, await revisionHeader(path, sys));
          notify(`Metadata “${key}” saved.`, "success");
          await reload();
        } catch (error) {
          notify(`Cannot save “${key}”: ${error.message}`, "error");
        }
      });
      remove.addEventListener("click", async () => {
        if (!await confirmDialog("Remove metadata", `Remove the value of “${key}”?`, "Remove")) return;
        try {
          await request("DELETE", path, {headers: await revisionHeader(path, sys)});
          notify(`Metadata “${key}” removed.`, "success");
          await reload();
        } catch (error) {
          notify(`Cannot remove “${key}”: ${error.message}`, "error");
        }
      });
      return form;
    }));
}

/** With CheckRevisions, a change must name the revision it replaces (If-Match: the current ETag). */
async function revisionHeader(path, sys) {
  if (!sys || !sys.CheckRevisions) return {};
  const response = await fetch(url(path), {credentials: "same-origin"});
  const etag = response.ok ? response.headers.get("etag") : null;
  return etag ? {"If-Match": etag} : {};
}

// -- attachments ----------------------------------------------------------------------------------

export function attachmentsSection(collection, id) {
  const holder = h("div", {}, spinner());
  const section = h("section", {class: "card", "aria-labelledby": "attachments-h"},
    h("h2", {id: "attachments-h"}, "Attachments"), holder);
  const base = `${collection}/${seg(id)}/attachments`;
  const load = async () => {
    const names = await get(`${base}?full`);
    const rows = await Promise.all(Object.entries(names).map(async ([name, number]) => {
      const info = await get(`${base}/${seg(name)}/info`).catch(() => ({}));
      return {name, number, info};
    }));
    holder.replaceChildren(table([
      {label: "Name", cell: (r) => r.name},
      {label: "Content type", class: "num", cell: (r) => String(r.number)},
      {label: "Size", class: "num", cell: (r) => formatBytes(r.info.UncompressedSize ?? "?")},
      {label: "Stored size", class: "num", cell: (r) => formatBytes(r.info.CompressedSize ?? "?")},
      {label: "Download", cell: (r) => h("a", {href: url(`${base}/${seg(r.name)}/data`),
        download: `${id}-${r.name}`}, `Download ${r.name}`)},
      {label: "Remove", cell: (r) => r.number < 1024 ? "" : h("button", {type: "button", class: "btn btn-small",
        onclick: async () => {
          if (!await confirmDialog("Remove attachment", `Remove the attachment “${r.name}”?`, "Remove")) return;
          try {
            await del(`${base}/${seg(r.name)}`);
            await load();
          } catch (error) {
            notify(error.message, "error");
          }
        }}, `Remove ${r.name}`)},
    ], rows, {empty: "No attachment."}));
  };
  load().catch((error) => holder.replaceChildren(h("p", {class: "error-box"}, error.message)));
  return section;
}

// -- labels ---------------------------------------------------------------------------------------

export function labelsSection(resource) {
  const labels = resource.Labels || [];
  if (!labels.length) return null;
  return h("section", {class: "card", "aria-labelledby": "labels-h"}, h("h2", {id: "labels-h"}, "Labels"),
    h("ul", {class: "chips"}, labels.map((label) => h("li", {class: "chip"}, label))));
}

