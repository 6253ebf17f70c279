// VoxGate panel: small progressive enhancements. Every page works without this file; it adds live
// updates, confirmations, the scenario editor's keys, drag-to-reorder and log tails.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf"]');
  return meta ? meta.content : "";
}

// A management API method as the signed-in user (POST /panel/do/<Method>); resolves to its answer.
async function callMethod(name, params) {
  const body = new URLSearchParams({ ...params, csrf: csrfToken() });
  const response = await fetch("/panel/do/" + name, {
    method: "POST", body, headers: { Accept: "application/json" }, credentials: "same-origin",
  });
  const answer = await response.json();
  if (!response.ok || answer.error) throw new Error(answer.error ? answer.error.msg : response.statusText);
  return answer;
}

function setupMenu() {
  for (const button of document.querySelectorAll("[data-toggle]")) {
    button.addEventListener("click", () => document.getElementById(button.dataset.toggle).classList.toggle("open"));
  }
}

function setupConfirm() {
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
}

// Blocks of a live page are replaced by the server's new rendering (events.py).
function setupLive() {
  const root = document.querySelector("[data-live-view]");
  if (!root || !window.EventSource) return;
  const query = new URLSearchParams(location.search);
  query.set("view", root.dataset.liveView);
  const source = new EventSource("/panel/events?" + query.toString());
  source.addEventListener("block", (event) => {
    const block = JSON.parse(event.data);
    const element = document.getElementById(block.id);
    if (element) element.innerHTML = block.html;  // server-rendered and escaped
  });
  window.addEventListener("pagehide", () => source.close());
}

function lineNumbers(textarea, gutter) {
  const count = textarea.value.split("\n").length;
  let text = "";
  for (let i = 1; i <= count; i++) text += i + "\n";
  gutter.textContent = text;
  gutter.scrollTop = textarea.scrollTop;
}

function setupEditor() {
  for (const textarea of document.querySelectorAll("textarea.code")) {
    const gutter = textarea.parentElement.querySelector(".gutter");
    if (gutter) {
      lineNumbers(textarea, gutter);
      textarea.addEventListener("input", () => lineNumbers(textarea, gutter));
      textarea.addEventListener("scroll", () => { gutter.scrollTop = textarea.scrollTop; });
    }
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Tab" && !event.shiftKey) {
        event.preventDefault();
        textarea.setRangeText("  ", textarea.selectionStart, textarea.selectionEnd, "end");
        textarea.dispatchEvent(new Event("input"));
      } else if ((event.ctrlKey || event.metaKey) && event.key === "s") {
        event.preventDefault();
        textarea.form.requestSubmit();
      }
    });
    const line = parseInt(textarea.dataset.errorLine || "0", 10);
    if (line > 0) {  // select the line the syntax error is on
      const lines = textarea.value.split("\n");
      const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
      textarea.focus();
      textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
      textarea.scrollTop = Math.max(0, (line - 5) * 19.5);
    }
  }
}

// Drag (or the arrow buttons, on a phone) to reorder; the new order is saved at once.
function setupSortable() {
  for (const list of document.querySelectorAll("ul.sortable")) {
    let dragged = null;
    const save = async () => {
      const ids = [...list.querySelectorAll("li")].map((li) => li.dataset.id);
      const status = document.getElementById(list.dataset.status);
      try {
        await callMethod(list.dataset.method, { [list.dataset.field]: ids.join(";"), ...JSON.parse(list.dataset.params || "{}") });
        if (status) { status.textContent = "Order saved."; status.className = "pill ok"; }
      } catch (error) {
        if (status) { status.textContent = error.message; status.className = "pill bad"; }
      }
    };
    list.addEventListener("dragstart", (event) => {
      dragged = event.target.closest("li");
      dragged.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragged.dataset.id);
    });
    list.addEventListener("dragover", (event) => {
      event.preventDefault();
      const over = event.target.closest("li");
      if (!dragged || !over || over === dragged) return;
      const box = over.getBoundingClientRect();
      list.insertBefore(dragged, event.clientY > box.top + box.height / 2 ? over.nextSibling : over);
    });
    list.addEventListener("drop", (event) => event.preventDefault());
    list.addEventListener("dragend", () => { if (dragged) { dragged.classList.remove("dragging"); dragged = null; save(); } });
    list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-move]");
      if (!button) return;
      const li = button.closest("li");
      if (button.dataset.move === "up" && li.previousElementSibling) list.insertBefore(li, li.previousElementSibling);
      else if (button.dataset.move === "down" && li.nextElementSibling) list.insertBefore(li.nextElementSibling, li);
      else return;
      save();
    });
  }
}

// A session's log as it is written: the box streams it (?follow=1) until the session ends.
async function follow(pre) {
  const response = await fetch(pre.dataset.follow, { credentials: "same-origin" });
  if (!response.ok || !response.body) { pre.textContent = "The log is not available (" + response.status + ")."; return; }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  pre.textContent = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(document.createTextNode(decoder.decode(value, { stream: true })));
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }
  const state = document.getElementById(pre.dataset.state || "");
  if (state) { state.textContent = "ended"; state.className = "pill"; }
}

// The box's own log, polled with GetSystemLog from the last line seen.
async function tailSystemLog(pre) {
  let after = 0;
  const level = pre.dataset.level || "info";
  pre.textContent = "";
  for (;;) {
    try {
      const answer = await callMethod("GetSystemLog", { after, level, count: 500 });
      for (const record of answer.result) {
        const line = document.createElement("span");
        line.className = record.level;
        const when = new Date(record.time * 1000).toLocaleTimeString([], { hour12: false });
        line.textContent = `${when} ${record.level.toUpperCase()} ${record.logger}: ${record.message}\n`;
        pre.append(line);
      }
      if (answer.result.length) pre.scrollTop = pre.scrollHeight;
      after = answer.last;
    } catch (error) {
      pre.append(document.createTextNode(`(${error.message})\n`));
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupMenu();
  setupConfirm();
  setupLive();
  setupEditor();
  setupSortable();
  for (const pre of document.querySelectorAll("pre[data-follow]")) follow(pre);
  for (const pre of document.querySelectorAll("pre[data-system-log]")) tailSystemLog(pre);
});
