// The Explorer's shell: a hash router (#/patients, #/studies/ID, #/search?…) over views that each
// render into a fresh <section> and may return a cleanup function (to stop polling).

import {system} from "./api.js";
import {patientsView, resourceView} from "./browse.js";
import {clear, h} from "./dom.js";
import {jobsView} from "./jobs.js";
import {searchView} from "./search.js";
import {serverView} from "./server.js";
import {uploadView} from "./upload.js";

const routes = [
  {pattern: /^\/?$/, nav: "patients", view: (root, _m, q) => patientsView(root, q)},
  {pattern: /^\/patients$/, nav: "patients", view: (root, _m, q) => patientsView(root, q)},
  {pattern: /^\/(patients|studies|series|instances)\/([^/]+)$/, nav: "patients",
    view: (root, m) => resourceView(root, m[1], decodeURIComponent(m[2]))},
  {pattern: /^\/search$/, nav: "search", view: (root, _m, q) => searchView(root, q)},
  {pattern: /^\/upload$/, nav: "upload", view: (root) => uploadView(root)},
  {pattern: /^\/jobs$/, nav: "jobs", view: (root, _m, q) => jobsView(root, q)},
  {pattern: /^\/server$/, nav: "server", view: (root) => serverView(root)},
];

let cleanup = null;
let firstRender = true;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/patients";
  const [path, query = ""] = raw.split("?");
  return {path, query: new URLSearchParams(query)};
}

async function render() {
  const {path, query} = parseHash();
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.warn(e);
    }
    cleanup = null;
  }
  const main = document.getElementById("main");
  const root = h("section", {class: "view"});
  clear(main).appendChild(root);
  const route = routes.find((r) => r.pattern.test(path));
  for (const link of document.querySelectorAll("nav [data-nav]")) {
    if (route && link.dataset.nav === route.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const focusHeading = !firstRender;
  firstRender = false;
  if (!route) {
    root.append(h("h1", {tabindex: "-1"}, "Page not found"),
      h("p", {}, "There is nothing at this address. ", h("a", {href: "#/patients"}, "Go to the patients.")));
    document.title = "Not found — Donjon Explorer";
    if (focusHeading) root.querySelector("h1").focus();
    return;
  }
  try {
    const done = route.view(root, path.match(route.pattern), query);
    // move the focus to the new page's heading as soon as it exists (screen readers announce it)
    if (focusHeading) focusWhenReady(root);
    cleanup = (await done) || null;
  } catch (error) {
    root.append(h("div", {class: "error-box", role: "alert"}, h("h1", {tabindex: "-1"}, "Something went wrong"),
      h("p", {}, String(error.message || error))));
  }
  const heading = root.querySelector("h1");
  document.title = `${heading ? heading.textContent : "Explorer"} — Donjon Explorer`;
}

function focusWhenReady(root) {
  const tryFocus = () => {
    const heading = root.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({preventScroll: false});
      return true;
    }
    return false;
  };
  if (tryFocus()) return;
  const observer = new MutationObserver(() => {
    if (tryFocus()) observer.disconnect();
  });
  observer.observe(root, {childList: true, subtree: true});
  setTimeout(() => observer.disconnect(), 5000);
}

function start() {
  const skip = document.querySelector(".skip-link");
  skip.addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("main").focus();
  });
  window.addEventListener("hashchange", render);
  system().then((info) => {
    const name = document.getElementById("server-name");
    if (info.Name) name.textContent = info.Name;
  }).catch(() => {});
  render();
}

start();
