/* mockkling dashboard.
 *
 * Reads the mock's state as server-sent events from ./state (the page is served at
 * /__mockkling/, so every URL here is relative to the control API) and acts through the control
 * API. No framework: a helper that builds DOM nodes, and keyed lists, so that an update never
 * replaces a node someone is using (a playing video, a focused button, a half-filled form).
 */
"use strict";

const MAX_ROWS = 500; // journal rows kept on the page
const TERMINAL = new Set(["succeed", "failed"]);
const RANK = { submitted: 0, processing: 1, succeed: 2, failed: 2 };
const VIDEO = /\.(mp4|webm|mov|m4v)(\?|$)/i;
const IMAGE = /\.(png|jpe?g|webp|gif)(\?|$)/i;
const AUDIO = /\.(mp3|wav|ogg|m4a|aac|flac)(\?|$)/i;

const $ = (id) => document.getElementById(id);

/** An element: h("a", {href: "/", text: "home"}, child, ...); on* attributes add listeners. */
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const label = (text, control) => h("label", {}, text, control);
const pad = (n, width = 2) => String(n).padStart(width, "0");

/** A time on the mock's clock, local: HH:MM:SS.mmm (with the date when asked). */
function formatTime(ms, withDate = false) {
  const d = new Date(ms);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : time;
}

function timeNode(ms) {
  const iso = new Date(ms).toISOString();
  return h("time", { datetime: iso, title: iso, text: formatTime(ms) });
}

// -- talking to the control API ------------------------------------------------------------------

function announce(text, kind = "info") {
  const node = $("announcer");
  node.dataset.kind = kind;
  node.textContent = text;
}

/** Call the control API; the answer's JSON, or null after showing its error (in errorNode if
 *  given, else in the announcer). */
async function call(method, path, body, errorNode) {
  if (errorNode) errorNode.textContent = "";
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    fail(errorNode, `The mock did not answer (${error.message}).`);
    return null;
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    fail(errorNode, (data && data.message) || `The mock answered HTTP ${response.status}.`);
    return null;
  }
  return data || {};
}

function fail(errorNode, message) {
  if (errorNode) errorNode.textContent = message;
  else announce(message, "error");
}

// -- the clock -------------------------------------------------------------------------------------

const clock = { now: 0, manual: true, at: 0 };

function setClock(data) {
  Object.assign(clock, { now: data.now_ms, manual: data.manual, at: performance.now() });
  renderClock();
}

/** The mock's time: a manual clock is what the mock last said; a system clock runs on here. */
const clockNow = () => (clock.manual ? clock.now : clock.now + (performance.now() - clock.at));

function renderClock() {
  const now = Math.round(clockNow());
  const node = $("clock-now");
  node.textContent = formatTime(now, true);
  node.dateTime = new Date(now).toISOString();
  $("clock-kind").textContent = clock.manual ? "manual clock" : "system clock";
}

setInterval(() => { if (!clock.manual && clock.at) renderClock(); }, 250);

$("advance-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const seconds = Number($("advance-seconds").value);
  const answer = await call("POST", "clock/advance", { seconds });
  if (answer) {
    setClock(answer);
    announce(`Clock advanced by ${seconds} s, to ${formatTime(answer.now_ms)}.`);
  }
});

$("reset").addEventListener("click", async () => {
  const sure = window.confirm(
    "Reset the mock? Every task, fate rule and recorded request is forgotten; fault rules and limits go back to the configuration.");
  if (sure && await call("POST", "reset")) announce("The mock was reset.");
});

// Filter forms only filter: Enter must not submit them.
for (const form of document.querySelectorAll("form.filters")) form.addEventListener("submit", (e) => e.preventDefault());

// -- tasks -----------------------------------------------------------------------------------------

const tasks = new Map(); // task_id -> card (the state's view of a task)
const nodes = new Map(); // task_id -> its DOM parts
const groups = new Map(); // account -> {section, lists: Map(action -> {section, list, count})}
let endpoints = {};
let taskIds = [];
let taskCount = 0;

function onTasks(data) {
  for (const card of data.tasks) tasks.set(card.task_id, card);
  const kept = new Set(data.ids);
  for (const id of [...tasks.keys()]) {
    if (!kept.has(id)) {
      tasks.delete(id);
      const node = nodes.get(id);
      if (node) node.li.remove();
      nodes.delete(id);
    }
  }
  taskIds = data.ids;
  taskCount = data.count;
  for (const card of data.tasks) {
    let node = nodes.get(card.task_id);
    if (!node) {
      node = taskNode(card.task_id);
      nodes.set(card.task_id, node);
    }
    updateTask(node, card);
  }
  placeTasks();
  refreshTaskFilters();
  filterTasks();
}

function taskNode(id) {
  const detailsId = `task-${id}-details`;
  const badge = h("span", { class: "badge" });
  const meta = h("span", { class: "meta" });
  const when = h("span", { class: "when" });
  const toggle = h("button", {
    type: "button", class: "task-toggle", "aria-expanded": "false", "aria-controls": detailsId,
  }, badge, h("span", { class: "id", text: id }), meta, when);
  const details = h("div", { class: "task-details", id: detailsId, hidden: true });
  const node = { id, li: h("li", { class: "task", "data-task-id": id }, toggle, details), toggle, badge, meta, when, details, open: false, parts: null };
  toggle.addEventListener("click", () => {
    node.open = !node.open;
    toggle.setAttribute("aria-expanded", String(node.open));
    details.hidden = !node.open;
    if (node.open) renderDetails(node, tasks.get(id));
  });
  return node;
}

function updateTask(node, card) {
  const status = card.record ? "record" : card.status;
  node.badge.className = `badge ${status}`;
  node.badge.textContent = status;
  node.meta.textContent = [card.model, card.mode, card.duration && `${card.duration} s`].filter(Boolean).join(" · ");
  node.when.replaceChildren(timeNode(card.created_at));
  node.li.dataset.status = card.status;
  if (node.open) renderDetails(node, card);
}

/** A task's details, built on first opening; later updates change only what changed. */
function renderDetails(node, card) {
  if (!node.parts) {
    node.parts = { timeline: h("div", {}), facts: h("div", {}), result: h("div", {}), resultKey: null, fate: fateForm(node.id) };
    node.details.append(node.parts.timeline, node.parts.facts, node.parts.result, node.parts.fate);
  }
  const parts = node.parts;
  parts.timeline.replaceChildren(card.record ? h("p", { text: "A record: made at once, with no lifecycle." }) : timeline(card));
  parts.facts.replaceChildren(facts(card));
  const resultKey = JSON.stringify(card.result);
  if (resultKey !== parts.resultKey) { // never rebuilt while it stays the same: a video keeps playing
    parts.resultKey = resultKey;
    parts.result.replaceChildren(card.result ? resultNode(card) : []);
  }
  parts.fate.hidden = card.record || TERMINAL.has(card.status);
}

function timeline(card) {
  const rank = RANK[card.status];
  const end = TERMINAL.has(card.status) ? card.status : card.outcome;
  const steps = [["submitted", card.created_at, true], ["processing", card.processing_at, rank >= 1], [end, card.done_at, rank >= 2]];
  return h("ol", { class: "timeline", "aria-label": `Status timeline of task ${card.task_id}` }, steps.map(([name, at, reached]) =>
    h("li", { class: `${name}${reached ? " reached" : ""}`, "aria-current": card.status === name ? "step" : null },
      h("span", { class: "step", text: name }),
      at === null
        ? h("span", { text: "held: no time set" })
        : [reached ? "" : "scheduled ", timeNode(at), ` (+${((at - card.created_at) / 1000).toFixed(1)} s)`])));
}

function facts(card) {
  const endpoint = endpoints[card.action];
  const rows = [
    ["Endpoint", endpoint ? `${card.action} (${endpoint.path})` : card.action],
    ["Account", card.account],
    ["External id", card.external_task_id],
    ["Message", card.status_msg],
    ["Error code", card.error_code],
  ].filter(([, value]) => value !== null && value !== undefined && value !== "");
  return h("dl", { class: "facts" }, rows.map(([name, value]) => [h("dt", { text: name }), h("dd", { text: value })]));
}

/** A finished task's result, whatever its kinds: each item's first URL plays or shows by its
 *  file type (video, image, audio); other fields and every URL are listed with it. */
function resultNode(card) {
  const box = h("div", { class: "result" });
  for (const [kind, items] of Object.entries(card.result)) {
    items.forEach((item, index) => {
      const name = `${kind} ${index + 1} of task ${card.task_id}`;
      const urls = Object.entries(item).filter(([key, value]) => typeof value === "string" && /url/.test(key));
      const main = urls.find(([key]) => !key.includes("watermark"));
      let media = null;
      if (main && VIDEO.test(main[1])) media = h("video", { controls: true, preload: "metadata", src: main[1], "aria-label": `Result ${name}` });
      else if (main && IMAGE.test(main[1])) media = h("img", { src: main[1], alt: `Result ${name}` });
      else if (main && AUDIO.test(main[1])) media = h("audio", { controls: true, preload: "metadata", src: main[1], "aria-label": `Result ${name}` });
      const others = Object.entries(item).filter(([key, value]) => !urls.some(([u]) => u === key) && (value === null || typeof value !== "object"));
      box.append(h("figure", {}, media, h("figcaption", {},
        `${kind} ${index + 1}`,
        others.map(([key, value]) => ` · ${key}: ${value}`),
        urls.map(([key, url]) => [" · ", h("a", { href: url, target: "_blank", rel: "noopener" }, key)]))));
    });
  }
  return box;
}

function fateForm(taskId) {
  const error = h("p", { class: "form-error", role: "alert" });
  const status = h("select", { name: "status" },
    h("option", { value: "succeed", text: "succeed now" }),
    h("option", { value: "failed", text: "fail now" }),
    h("option", { value: "processing", text: "hold in processing" }),
    h("option", { value: "submitted", text: "hold in submitted" }));
  const seconds = h("input", { name: "seconds", type: "number", min: 0, step: "any", placeholder: "until told", disabled: true });
  const message = h("input", { name: "message", placeholder: "Task failed", disabled: true });
  status.addEventListener("change", () => {
    seconds.disabled = !["processing", "submitted"].includes(status.value);
    message.disabled = status.value !== "failed";
  });
  const form = h("form", { class: "fate-form" },
    h("fieldset", {}, h("legend", { text: "Set this task's fate" }),
      label("Fate", status), label("For (s)", seconds), label("Failure message", message),
      h("button", { type: "submit", text: "Set fate" })),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { status: status.value };
    if (!seconds.disabled && seconds.value !== "") body.seconds = Number(seconds.value);
    if (!message.disabled && message.value) body.message = message.value;
    if (await call("PUT", `tasks/${encodeURIComponent(taskId)}/fate`, body, error)) {
      announce(`Task ${taskId}: fate set (${status.options[status.selectedIndex].text}).`);
    }
  });
  return form;
}

/** The list a task goes in: under its account, then its endpoint, each made on first use and
 *  kept in order (accounts by name, endpoints in the catalogue's order). */
function taskList(account, action) {
  let group = groups.get(account);
  if (!group) {
    const section = h("section", { class: "group", "data-account": account, "aria-label": `Account ${account}` },
      h("h3", {}, "Account ", h("code", { text: account })));
    group = { section, lists: new Map() };
    groups.set(account, group);
    insertSorted($("task-groups"), section, [...groups.keys()].sort(), account, (g) => groups.get(g).section);
  }
  let entry = group.lists.get(action);
  if (!entry) {
    const endpoint = endpoints[action];
    const count = h("span", { class: "count" });
    const list = h("ul", { class: "task-list" });
    const section = h("section", { "data-action": action, "aria-label": `${action} tasks of ${account}` },
      h("h4", {}, action, endpoint ? [" ", h("code", { text: endpoint.path })] : "", " ", count), list);
    entry = { section, list, count };
    group.lists.set(action, entry);
    const order = Object.keys(endpoints);
    const place = (a) => (order.includes(a) ? order.indexOf(a) : order.length);
    const sorted = [...group.lists.keys()].sort((a, b) => place(a) - place(b) || a.localeCompare(b));
    insertSorted(group.section, section, sorted, action, (a) => group.lists.get(a).section);
  }
  return entry;
}

function insertSorted(parent, node, sortedKeys, key, nodeOf) {
  const after = sortedKeys.slice(sortedKeys.indexOf(key) + 1).map(nodeOf).find((n) => n && n.parentNode === parent);
  parent.insertBefore(node, after || null);
}

/** Each list in the order of the state (newest first), moving no node that is already in
 *  place: a media element taken out of the page stops playing. */
function placeTasks() {
  const wanted = new Map();
  for (const id of taskIds) {
    const card = tasks.get(id);
    const entry = taskList(card.account, card.action);
    if (!wanted.has(entry)) wanted.set(entry, []);
    wanted.get(entry).push(nodes.get(id).li);
  }
  for (const [account, group] of groups) {
    for (const [action, entry] of group.lists) {
      const items = wanted.get(entry) || [];
      items.forEach((li, i) => { if (entry.list.children[i] !== li) entry.list.insertBefore(li, entry.list.children[i] || null); });
      entry.count.textContent = `(${items.length})`;
      if (!items.length) { entry.section.remove(); group.lists.delete(action); }
    }
    if (!group.lists.size) { group.section.remove(); groups.delete(account); }
  }
  $("tasks-empty").hidden = taskIds.length > 0;
  const shown = taskIds.length < taskCount ? `newest ${taskIds.length} of ${taskCount}` : String(taskCount);
  $("task-count").textContent = `(${shown})`;
}

function refreshTaskFilters() {
  fillSelect($("filter-account"), [...new Set([...tasks.values()].map((t) => t.account))].sort());
  const actions = new Set([...Object.keys(endpoints), ...[...tasks.values()].map((t) => t.action)]);
  fillSelect($("filter-action"), [...actions]);
}

function fillSelect(select, values) {
  const current = [...select.options].slice(1).map((o) => o.value);
  if (current.join("\n") === values.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "", text: "All" }), values.map((v) => h("option", { value: v, text: v })));
  select.value = values.includes(chosen) ? chosen : "";
}

function filterTasks() {
  const account = $("filter-account").value;
  const action = $("filter-action").value;
  const status = $("filter-status").value;
  for (const [id, node] of nodes) {
    const card = tasks.get(id);
    node.li.hidden = Boolean((account && card.account !== account) || (action && card.action !== action) || (status && card.status !== status));
  }
  for (const group of groups.values()) {
    let any = false;
    for (const entry of group.lists.values()) {
      entry.section.hidden = ![...entry.list.children].some((li) => !li.hidden);
      any = any || !entry.section.hidden;
    }
    group.section.hidden = !any;
  }
}

for (const id of ["filter-account", "filter-action", "filter-status"]) $(id).addEventListener("change", filterTasks);

// -- the journal -----------------------------------------------------------------------------------

const rows = new Map(); // entry id -> <tr>
let journalLoaded = false;

function onJournal(data) {
  for (const [id, tr] of rows) {
    if (data.first_id === null || id < data.first_id) { tr.remove(); rows.delete(id); }
  }
  const body = $("journal-rows");
  const query = $("filter-journal").value.trim().toLowerCase();
  const flash = journalLoaded && data.entries.length <= 20; // a flood is not flashed row by row
  for (const entry of data.entries) { // oldest first: each goes above the older ones
    if (rows.has(entry.id)) continue;
    const tr = journalRow(entry, flash);
    tr.hidden = Boolean(query) && !tr.dataset.search.includes(query);
    rows.set(entry.id, tr);
    let before = body.firstElementChild;
    while (before && Number(before.dataset.id) > entry.id) before = before.nextElementSibling;
    body.insertBefore(tr, before);
  }
  while (rows.size > MAX_ROWS) {
    const last = body.lastElementChild;
    rows.delete(Number(last.dataset.id));
    last.remove();
  }
  journalLoaded = true;
  $("journal-empty").hidden = rows.size > 0;
  $("journal-count").textContent = rows.size ? `(${rows.size}${rows.size >= MAX_ROWS ? ", newest" : ""})` : "";
}

function journalRow(entry, fresh) {
  const target = entry.path + (entry.query ? `?${entry.query}` : "");
  const open = h("button", { type: "button", class: "link", "aria-haspopup": "dialog" },
    h("span", { class: "method", text: entry.method }), target);
  open.addEventListener("click", () => openRequest(entry.id, open));
  const statusClass = entry.status === null ? "status-none" : `status-${String(entry.status)[0]}`;
  const tr = h("tr", { "data-id": entry.id, class: fresh ? "new" : null },
    h("td", {}, timeNode(entry.time)),
    h("td", {}, open),
    h("td", { class: statusClass, text: entry.status === null ? "dropped" : entry.status }),
    h("td", { class: "mono", text: entry.account || "–", title: entry.account }),
    h("td", { title: entry.fault ? `fault rule ${entry.fault} fired` : null },
      entry.fault ? [h("span", { class: "visually-hidden", text: "fault rule " }), `#${entry.fault}`] : ""));
  tr.dataset.search = `${entry.method} ${target} ${entry.status} ${entry.account || ""}`.toLowerCase();
  return tr;
}

$("filter-journal").addEventListener("input", () => {
  const query = $("filter-journal").value.trim().toLowerCase();
  for (const tr of rows.values()) tr.hidden = Boolean(query) && !tr.dataset.search.includes(query);
});

let opener = null;

async function openRequest(id, button) {
  const dialog = $("request-dialog");
  opener = button;
  $("request-heading").textContent = `Request ${id}`;
  $("request-body").replaceChildren(h("p", { text: "Loading…" }));
  if (!dialog.open) dialog.showModal();
  const error = h("p", { class: "form-error", role: "alert" });
  const entry = await call("GET", `journal/${id}`, undefined, error);
  if (!entry) {
    $("request-body").replaceChildren(error);
    return;
  }
  $("request-heading").textContent = `${entry.method} ${entry.path}`;
  const answer = entry.response;
  $("request-body").replaceChildren(
    h("dl", { class: "facts" },
      h("dt", { text: "Time" }), h("dd", {}, timeNode(entry.time)),
      h("dt", { text: "Query" }), h("dd", { text: entry.query || "–" }),
      h("dt", { text: "Account" }), h("dd", { text: entry.account || "none" }),
      h("dt", { text: "Fault rule" }), h("dd", { text: entry.fault ? `rule ${entry.fault} fired` : "none" }),
      h("dt", { text: "Took" }), h("dd", { text: `${entry.duration_ms.toFixed(2)} ms` })),
    h("div", { class: "exchange" },
      h("section", { "aria-labelledby": "sent-heading" },
        h("h3", { id: "sent-heading", text: "Sent (credentials masked)" }),
        headerTable(entry.headers, "Request headers"),
        h("h4", { text: `Body, ${entry.body_size} bytes` }),
        bodyBlock(entry.body, entry.body_size, entry.body_truncated, entry.headers["content-type"])),
      h("section", { "aria-labelledby": "answer-heading" },
        h("h3", { id: "answer-heading", text: entry.status === null ? "Answer: connection dropped" : `Answer: ${entry.status}` }),
        headerTable(answer.headers, "Answer headers"),
        h("h4", { text: `Body, ${answer.body_size} bytes` }),
        bodyBlock(answer.body, answer.body_size, answer.body_truncated, answer.headers["content-type"]))));
}

function headerTable(headers, caption) {
  const names = Object.keys(headers);
  if (!names.length) return h("p", { class: "empty", text: "No headers." });
  return h("table", { class: "headers" }, h("caption", { class: "visually-hidden", text: caption }),
    h("tbody", {}, names.map((name) => h("tr", {}, h("th", { scope: "row", text: name }), h("td", { class: "mono", text: headers[name] })))));
}

function bodyBlock(text, size, truncated, contentType) {
  if (!size) return h("p", { class: "empty", text: "Empty." });
  if (!text) return h("p", { class: "empty", text: `Not kept: ${contentType || "binary"} content.` });
  let shown = text;
  if (!truncated) {
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: shown as sent */ }
  }
  return [h("pre", { tabindex: 0, text: shown }), truncated ? h("p", { class: "empty", text: `The first ${new TextEncoder().encode(text).length} bytes of ${size}.` }) : null];
}

$("request-close").addEventListener("click", () => $("request-dialog").close());
$("request-dialog").addEventListener("close", () => { if (opener && opener.isConnected) opener.focus(); });

// -- rules and limits ------------------------------------------------------------------------------

/** Keep <ul> in step with items by key: a node whose text is unchanged is left alone. */
function syncList(list, items, key, describe, remove, emptyText) {
  const byKey = new Map([...list.children].map((li) => [li.dataset.key, li]));
  const wanted = items.map((item) => {
    const k = String(key(item));
    let li = byKey.get(k);
    const text = describe(item);
    if (!li) {
      li = h("li", { "data-key": k }, h("span", {}), remove(item));
    }
    if (li.firstChild.textContent !== text) li.firstChild.textContent = text;
    return li;
  });
  if (!wanted.length) wanted.push(h("li", { class: "empty", "data-key": "" }, h("span", { text: emptyText })));
  for (const li of [...list.children]) if (!wanted.includes(li)) li.remove();
  wanted.forEach((li, i) => { if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null); });
}

function removeButton(what, path, heading) {
  return (rule) => h("button", {
    type: "button", "aria-label": `Remove ${what} ${rule.id}`, text: "Remove",
    onclick: async () => {
      if (await call("DELETE", `${path}/${rule.id}`)) {
        announce(`${what[0].toUpperCase()}${what.slice(1)} ${rule.id} removed.`);
        $(heading).focus(); // the button is about to go
      }
    },
  });
}

function describeFault(rule) {
  const match = [rule.method || "any method", rule.path || "any path"];
  for (const key of ["surface", "account", "model", "prompt"]) if (rule[key]) match.push(`${key} ${rule[key]}`);
  const act = [];
  if (rule.code !== null) act.push(`answer ${rule.status} / ${rule.code}${rule.message ? ` "${rule.message}"` : ""}`);
  if (rule.fault) act.push(rule.fault === "drop" ? "drop the connection" : "cut the answer in half");
  if (rule.delay_ms) act.push(`wait ${rule.delay_ms} ms`);
  const times = rule.times === null ? "always" : `${rule.remaining} of ${rule.times} left`;
  const chance = rule.probability < 1 ? `, p=${rule.probability}` : "";
  return `#${rule.id} ${match.join(", ")}: ${act.join(", then ")} (${times}${chance}; fired ${rule.fired})`;
}

function describeFate(rule) {
  const fate = rule.fate;
  const what = [fate.status && (TERMINAL.has(fate.status) ? `${fate.status} at once` : `held ${fate.status}${fate.seconds === null ? "" : ` for ${fate.seconds} s`}`),
    fate.outcome && `then ${fate.outcome}`, fate.message && `"${fate.message}"`].filter(Boolean).join(", ");
  const match = ["account", "action", "model", "mode"].filter((k) => rule[k]).map((k) => `${k} ${rule[k]}`);
  const times = rule.remaining === null ? "every new task" : `${rule.remaining} left`;
  return `#${rule.id} ${match.length ? match.join(", ") : "any new task"}: ${what} (${times}; applied ${rule.applied})`;
}

function onFaults(data) {
  $("faults-state").textContent = data.enabled ? `(${data.faults.length})` : `(${data.faults.length}, switched off)`;
  syncList($("fault-list"), data.faults, (r) => r.id, describeFault, removeButton("fault rule", "faults", "faults-heading"), "None: every request is answered as usual.");
}

function onFates(data) {
  syncList($("fate-list"), data.fates, (r) => r.id, describeFate, removeButton("fate rule", "fates", "fates-heading"), "None.");
}

const NUMBERS = new Set(["code", "status", "delay_ms", "times"]);
const faultError = h("p", { class: "form-error", role: "alert" });
$("fault-form").append(faultError);
$("fault-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {};
  for (const [key, value] of new FormData(form)) if (value !== "") body[key] = NUMBERS.has(key) ? Number(value) : value;
  const rule = await call("POST", "faults", body, faultError);
  if (rule) {
    announce(`Fault rule ${rule.id} added.`);
    form.reset();
  }
});

function onLimits(data) {
  const cell = (value) => h("td", { class: "num", text: value === null || value === undefined ? "–" : value });
  const limits = data.limits;
  const all = [["every account", limits], ...Object.entries(limits.accounts)];
  $("limit-rows").replaceChildren(...all.map(([who, l]) => h("tr", {}, h("th", { scope: "row", text: who }),
    cell(l.rate), cell(l.per_seconds), cell(l.burst), cell(l.concurrency), cell(l.balance))));
  const usage = Object.entries(data.usage);
  const round = (v) => (v === null ? null : Math.round(v * 100) / 100);
  $("usage-rows").replaceChildren(...(usage.length
    ? usage.map(([account, u]) => h("tr", {}, h("th", { scope: "row", text: account }), cell(round(u.tokens)), cell(u.running), cell(round(u.balance))))
    : [h("tr", {}, h("td", { colspan: 4, class: "empty", text: "No account has used a limit yet." }))]));
}

// -- the stream ------------------------------------------------------------------------------------

function setConnection(state, text) {
  const node = $("connection");
  if (node.dataset.state === state && node.textContent === text) return; // said once is enough
  node.dataset.state = state;
  node.textContent = text;
}

const handlers = {
  endpoints: (data) => { endpoints = data; },
  clock: setClock,
  tasks: onTasks,
  journal: onJournal,
  faults: onFaults,
  fates: onFates,
  limits: (data) => {
    onLimits(data);
    if (!document.documentElement.dataset.ready) { // the first look has been drawn
      document.documentElement.dataset.ready = "true";
      performance.mark("mockkling:ready");
    }
  },
};

let reconnecting = null;

function connect() {
  const source = new EventSource("state");
  source.addEventListener("open", () => {
    clearTimeout(reconnecting);
    setConnection("live", "Live");
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) { // refused (401, 403): try again later
      setConnection("down", "Disconnected: retrying every 5 s");
      setTimeout(connect, 5000);
      return;
    }
    // A stream ends every minute and comes back at once: say so only if it stays away.
    clearTimeout(reconnecting);
    reconnecting = setTimeout(() => setConnection("connecting", "Reconnecting…"), 3000);
  });
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
  }
}

connect();
