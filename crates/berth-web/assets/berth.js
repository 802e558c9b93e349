// Progressive enhancement only: every page works without this file. It narrows the list as
// filters change, shows Test connection results in place, runs the delete dialog, and hides
// the form groups an authentication mode does not use.
"use strict";
document.documentElement.classList.add("js");
const FRAGMENT = { "X-Berth-Fragment": "1" };

async function fetchHtml(url, init) {
  const response = await fetch(url, Object.assign({ credentials: "same-origin" }, init));
  return response.text();
}

function liveFilters(form) {
  const target = document.querySelector(form.dataset.live);
  let timer;
  const update = () => {
    const params = new URLSearchParams(new FormData(form));
    for (const [k, v] of [...params]) if (!v) params.delete(k);
    const url = form.getAttribute("action") + (params.toString() ? "?" + params : "");
    fetchHtml(url, { headers: FRAGMENT }).then((html) => {
      target.innerHTML = html;
      history.replaceState(null, "", url);
    });
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(update, 200); };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  form.addEventListener("submit", (e) => { e.preventDefault(); update(); });
}

function postForm(form, submitter) {
  const body = new URLSearchParams(new FormData(form, submitter));
  // getAttribute: `form.action` is the button named "action" on the integration form.
  const url = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action");
  return fetchHtml(url, { method: "POST", body, headers: FRAGMENT });
}

document.addEventListener("submit", (e) => {
  const form = e.target;
  const submitter = e.submitter;
  const target = submitter && submitter.dataset.test
    ? document.querySelector(submitter.dataset.test)
    : form.dataset.result && document.querySelector(form.dataset.result);
  if (!target) return;
  e.preventDefault();
  target.textContent = "Testing…";
  postForm(form, submitter).then((html) => { target.innerHTML = html; });
});

const dialog = document.getElementById("dialog");
let opener = null;
function trapFocus(e) {
  if (e.key !== "Tab") return;
  const items = [...dialog.querySelectorAll("a[href], button, input:not([type=hidden])")];
  if (!items.length) return;
  const first = items[0], last = items[items.length - 1];
  if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
  else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
}
document.addEventListener("click", (e) => {
  const link = e.target.closest("a[data-dialog]");
  if (link && dialog) {
    e.preventDefault();
    opener = link;
    fetchHtml(link.href, { headers: FRAGMENT }).then((html) => {
      dialog.innerHTML = html;
      dialog.showModal();
      const first = dialog.querySelector("button, a[href]");
      if (first) first.focus();
    });
    return;
  }
  if (e.target.closest("[data-close]") && dialog && dialog.open) {
    e.preventDefault();
    dialog.close();
  }
});
if (dialog) {
  dialog.addEventListener("keydown", trapFocus);
  dialog.addEventListener("close", () => { if (opener) opener.focus(); });
}

// Groups marked data-when="field=value other=value" show when any condition holds.
function applySwitches(form) {
  const value = (name) => { const c = form.querySelector(`input[name="${name}"]:checked`); return c ? c.value : ""; };
  for (const group of form.querySelectorAll("[data-when]")) {
    const conditions = group.dataset.when.split(" ").map((c) => c.split("="));
    const authMode = value("auth_mode");
    group.hidden = !conditions.some(([name, v]) =>
      value(name) === v && (name !== "role_source" || authMode === "assume_role"));
  }
}

for (const form of document.querySelectorAll("form[data-live]")) liveFilters(form);
for (const form of document.querySelectorAll("form.integration-form")) {
  applySwitches(form);
  form.addEventListener("change", () => applySwitches(form));
}
