// DOM helpers. Every value is inserted as text (textContent, setAttribute): never as markup, so a
// DICOM value such as `<script>` is shown, not run. The server's CSP (Trusted Types) enforces it.

/** Build an element: h("a", {href: "#/x", class: "btn"}, "text", child, [more]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children: strings and numbers become text nodes; arrays are flattened; null is skipped. */
export function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** A DICOM date (YYYYMMDD) as YYYY-MM-DD; anything else unchanged. */
export function formatDate(value) {
  const v = String(value ?? "");
  return /^\d{8}$/.test(v) ? `${v.slice(0, 4)}-${v.slice(4, 6)}-${v.slice(6, 8)}` : v;
}

/** A DICOM time (HHMMSS.frac) as HH:MM:SS. */
export function formatTime(value) {
  const v = String(value ?? "");
  const m = /^(\d{2})(\d{2})?(\d{2})?/.exec(v);
  if (!m) return v;
  return [m[1], m[2] || "00", m[3] || "00"].join(":");
}

/** An Orthanc timestamp (YYYYMMDDTHHMMSS[.ffffff]) as a local-looking date and time. */
export function formatTimestamp(value) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})/.exec(String(value ?? ""));
  return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}` : String(value ?? "");
}

/** A DICOM person name with its component separators made readable. */
export function formatName(value) {
  return String(value ?? "").replace(/\^+/g, " ").trim();
}

export function formatBytes(n) {
  const value = Number(n);
  if (!Number.isFinite(value)) return String(n);
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = value;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A short, polite announcement (also read by screen readers through the live region). */
export function notify(message, kind = "info", link = null) {
  const area = document.getElementById("toasts");
  if (!area) return;
  const toast = h("div", {class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status"},
    h("span", {}, message), link ? h("a", {href: link.href}, link.text) : null,
    h("button", {type: "button", class: "toast-close", "aria-label": "Dismiss",
      onclick: () => toast.remove()}, "×"));
  area.appendChild(toast);
  setTimeout(() => toast.remove(), kind === "error" ? 12000 : 6000);
}

/**
 * A modal dialog (native <dialog>: focus is kept inside, Escape closes it). `body` is a node or a
 * list of nodes; `buttons` are {label, value, kind}. Resolves with the chosen value (null if closed).
 * When `form` is true the dialog is a <form method=dialog> and resolves with its FormData.
 */
export function dialog({title, body, buttons, form = false, initialFocus = null}) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const content = h(form ? "form" : "div", form ? {method: "dialog"} : {},
      h("h2", {id: titleId}, title),
      h("div", {class: "dialog-body"}, body),
      h("div", {class: "dialog-buttons"}, buttons.map((b) => h("button", {
        type: form && b.value !== "cancel" ? "submit" : "button", value: b.value,
        class: `btn ${b.kind ? `btn-${b.kind}` : ""}`, dataset: {value: b.value},
      }, b.label))));
    const dlg = h("dialog", {"aria-labelledby": titleId}, content);
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      dlg.close();
      dlg.remove();
      resolve(value);
    };
    content.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-value]");
      if (!button) return;
      if (form && button.type === "submit") {
        event.preventDefault();
        if (!content.reportValidity()) return;
        finish(button.dataset.value === "cancel" ? null : new FormData(content));
      } else {
        finish(button.dataset.value === "cancel" ? null : button.dataset.value);
      }
    });
    if (form) {
      content.addEventListener("submit", (event) => {
        event.preventDefault();
        finish(new FormData(content));
      });
    }
    dlg.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(null);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    const target = initialFocus ? dlg.querySelector(initialFocus) : null;
    if (target) target.focus();
  });
}

/** Ask before something that cannot be undone; the safe answer has the focus. */
export async function confirmDialog(title, message, actionLabel, kind = "danger") {
  const value = await dialog({
    title, body: h("p", {}, message),
    buttons: [{label: "Cancel", value: "cancel"}, {label: actionLabel, value: "ok", kind}],
    initialFocus: "button[data-value=cancel]",
  });
  return value === "ok";
}

/** A labelled form field; `control` gets an id so its label is announced. */
export function field(label, control, hint = null) {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  const hintNode = hint ? h("small", {id: `${id}-hint`, class: "hint"}, hint) : null;
  if (hintNode) control.setAttribute("aria-describedby", hintNode.id);
  return h("div", {class: "field"}, h("label", {for: id}, label), control, hintNode);
}

/** A definition list of label/value pairs (values shown as text). */
export function definitionList(pairs) {
  return h("dl", {class: "props"}, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [
    h("dt", {}, k), h("dd", {}, v === null || v === "" ? "—" : v),
  ]));
}

/** A data table: columns are {label, cell(row) -> node|string, class}. */
export function table(columns, rows, {caption = null, empty = "Nothing here."} = {}) {
  if (!rows.length) return h("p", {class: "empty"}, empty);
  return h("div", {class: "table-wrap"}, h("table", {class: "data"},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {scope: "col", class: c.class}, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c, i) =>
      h(i === 0 ? "th" : "td", i === 0 ? {scope: "row", class: c.class} : {class: c.class}, c.cell(row))))))));
}

export function spinner(label = "Loading…") {
  return h("p", {class: "loading", role: "status"}, label);
}
