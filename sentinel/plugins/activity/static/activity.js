/* Activity page: the backends, lock waits, blockers and the lock tree,
 * refreshed in place; cancel or terminate a backend after confirmation. */
"use strict";

(() => {
  const REFRESH_MS = 3000;
  const section = document.getElementById("activity");
  const status = document.getElementById("activity-status");
  const outcome = document.getElementById("outcome");
  const tree = document.getElementById("locktree");
  const dialog = document.getElementById("confirm");
  const esc = Sentinel.escape;
  const SCALE = {B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5};

  /* "1.50K" -> 1536: the rates arrive as the agent writes them, and sort as numbers. */
  const bytes = (text) => {
    const match = /^([\d.]+)([A-Z])$/.exec(text || "");
    return match ? parseFloat(match[1]) * (SCALE[match[2]] || 1) : 0;
  };
  const withRates = (rows) => rows.map((row) =>
    ({...row, read_rate: bytes(row.read_s), write_rate: bytes(row.write_s)}));

  // Only an admin's page carries the signal URLs: a viewer gets no buttons.
  const mayAct = "killUrl" in section.dataset;
  const buttons = (pid) => mayAct ? `
    <button type="button" class="secondary outline" data-signal="cancel" data-pid="${pid}">Cancel</button>
    <button type="button" class="contrast outline" data-signal="terminate" data-pid="${pid}">Terminate</button>` : "";
  const actions = (pid) => mayAct ? `<td class="actions">${buttons(pid)}</td>` : "";
  const figures = (row) => `<td>${row.cpu.toFixed(2)}</td><td>${row.memory.toFixed(2)}</td><td>${esc(row.read_s)}</td>
    <td>${esc(row.write_s)}</td><td>${esc(row.iow)}</td>`;

  const backendRow = (row) => `<tr data-pid="${row.pid}">
    <td>${row.pid}</td>${actions(row.pid)}<td>${esc(row.database)}</td><td>${esc(row.user)}</td>
    <td>${row.client === null ? "<small>local</small>" : esc(row.client)}</td>
    ${figures(row)}<td>${esc(row.wait)}</td><td>${row.duration.toFixed(2)}</td>
    <td>${esc(row.state)}</td><td class="query">${esc(row.query)}</td></tr>`;
  const lockRow = (row) => `<tr data-pid="${row.pid}">
    <td>${row.pid}</td>${actions(row.pid)}<td>${esc(row.database)}</td><td>${esc(row.user)}</td>
    <td>${esc(row.relation)}</td><td>${esc(row.type)}</td><td>${esc(row.mode)}</td>
    ${figures(row)}<td>${row.duration.toFixed(2)}</td><td>${esc(row.state)}</td>
    <td class="query">${esc(row.query)}</td></tr>`;

  const tables = {
    backends: Sentinel.sortableTable(document.getElementById("backends"), [], backendRow),
    waiting: Sentinel.sortableTable(document.getElementById("waiting"), [], lockRow),
    blocking: Sentinel.sortableTable(document.getElementById("blocking"), [], lockRow),
  };

  const lockText = (lock) => lock.relation.trim()
    ? `${esc(lock.mode)} on ${esc(lock.relation)}` : `${esc(lock.mode)} (${esc(lock.type)})`;

  function nodeHtml(node, isRoot) {
    const age = node.xact_age === null ? "no transaction" : `transaction ${node.xact_age} s`;
    // An idle session "waits" for its client: not worth saying.
    const waits = node.wait_event_type && node.wait_event_type !== "Client"
      ? ` · waits: ${esc(node.wait_event_type)}/${esc(node.wait_event)}` : "";
    const holds = node.locks.length ? ` · holds ${node.locks.map(lockText).join(", ")}` : "";
    const rootActions = isRoot ? `<span class="actions">${buttons(node.pid)}</span>` : "";
    const children = node.blocking.length
      ? `<ul>${node.blocking.map((child) => nodeHtml(child, false)).join("")}</ul>` : "";
    return `<li data-pid="${node.pid}"><div class="node">
      <strong>${node.pid}</strong> ${esc(node.user)}@${esc(node.database)} · ${esc(node.state)}
      · ${node.duration} s · ${age}${waits}${holds} ${rootActions}
      <code>${esc(node.query)}</code></div>${children}</li>`;
  }

  function renderTree(roots) {
    tree.innerHTML = roots.length
      ? `<ul>${roots.map((root) => nodeHtml(root, true)).join("")}</ul>`
      : "<p>No backend is waiting for another.</p>";
  }

  async function refresh() {
    try {
      const data = await Sentinel.getJSON(section.dataset.url);
      tables.backends.render(withRates(data.activity));
      tables.waiting.render(withRates(data.waiting));
      tables.blocking.render(withRates(data.blocking));
      renderTree(data.locktree);
      document.getElementById("backends-count").textContent = `(${data.activity.length})`;
      document.getElementById("waiting-count").textContent = `(${data.waiting.length})`;
      document.getElementById("blocking-count").textContent = `(${data.blocking.length})`;
      Sentinel.say(status, `Refreshed at ${new Date().toLocaleTimeString()}, every ${REFRESH_MS / 1000} s.`);
    } catch (error) {
      Sentinel.say(status, `Could not refresh: ${error.message}`, true);
    }
  }

  const texts = {
    cancel: (pid) => [`Cancel the query of backend ${pid}`,
      "Its running query is cancelled; the session stays connected."],
    terminate: (pid) => [`Terminate backend ${pid}`,
      "Its session is closed and its open transaction, if any, rolled back."],
  };

  const confirmSignal = (signal, pid) => new Promise((resolve) => {
    const [title, text] = texts[signal](pid);
    document.getElementById("confirm-title").textContent = `${title}?`;
    document.getElementById("confirm-text").textContent = text;
    const finish = (answer) => { dialog.close(); resolve(answer); };
    document.getElementById("confirm-ok").onclick = () => finish(true);
    document.getElementById("confirm-back").onclick = () => finish(false);
    dialog.oncancel = () => resolve(false);  // Escape closes the dialog
    dialog.showModal();
  });

  /* The outcome in words: a refusal is an outcome too, not a failure. */
  function describe(signal, answer) {
    const refused = "it is not a client backend of this instance (or it has ended).";
    if (signal === "cancel") {
      return answer.cancelled ? `Query of backend ${answer.pid} cancelled.`
        : `Backend ${answer.pid} was not cancelled: ${refused}`;
    }
    return answer.killed ? `Backend ${answer.pid} terminated.`
      : `Backend ${answer.pid} was not terminated: ${refused}`;
  }

  section.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-signal]");
    if (!button) return;
    const signal = button.dataset.signal;
    const pid = Number(button.dataset.pid);
    if (!await confirmSignal(signal, pid)) return;
    const url = signal === "cancel" ? section.dataset.cancelUrl : section.dataset.killUrl;
    try {
      const answer = await Sentinel.postJSON(url, {pids: [pid]});
      Sentinel.say(outcome, describe(signal, answer.backends[0]));
    } catch (error) {
      Sentinel.say(outcome, `${signal} of backend ${pid} failed: ${error.message}`, true);
    }
    await refresh();
  });

  Sentinel.every(REFRESH_MS, refresh);
})();
