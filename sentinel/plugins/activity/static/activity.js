/* Activity page: the backends, lock waits, blockers and the lock tree,
 * refreshed in place; cancel a running query or terminate a backend after a
 * confirmation that says which backend and what it is doing. */
"use strict";

(() => {
  const REFRESH_MS = 3000;
  const f = Sentinel.format;
  const esc = Sentinel.escape;
  const section = document.getElementById("activity");
  const outcome = document.getElementById("outcome");
  const tree = document.getElementById("locktree");
  const SCALE = {B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5,
                 E: 1024 ** 6, Z: 1024 ** 7, Y: 1024 ** 8};
  // What the page knows of each backend, for the confirmations: {pid: row}.
  let known = new Map();

  /* "1.50K" -> 1536: the API writes rates as the agent does; anything else is unknown. */
  const bytes = (text) => {
    const match = /^([\d.]+)([A-Z])$/.exec(text || "");
    return match && SCALE[match[2]] ? parseFloat(match[1]) * SCALE[match[2]] : null;
  };
  /* The figures the page sorts and filters by, beside the API's own. */
  const withFigures = (rows) => rows.map((row) => {
    const [read, write] = [bytes(row.read_s), bytes(row.write_s)];
    const waits = [row.iow === "Y" ? "I/O" : null, row.wait === "Y" ? "lock" : null].filter(Boolean);
    return {...row, read_rate: read, write_rate: write,
            io_rate: read === null && write === null ? null : (read || 0) + (write || 0),
            waits: waits.length ? waits.join(" and ") : "none"};
  });

  const STATES = {"active": "ok", "idle": "unknown", "idle in transaction": "warning",
                  "idle in transaction (aborted)": "critical"};
  const stateBadge = (state) => state ? Sentinel.badge(state, STATES[state] || "unknown") : f.UNKNOWN;
  const waitBadges = (row) => row.waits === "none" ? '<span class="no">none</span>'
    : row.waits.split(" and ").map((what) => Sentinel.badge(what, "warning")).join(" ");

  // Only an admin's page carries the signal URLs: a viewer gets no buttons.
  // Cancel only where a query runs: cancelling an idle session does nothing.
  const mayAct = "killUrl" in section.dataset;
  const buttons = (row) => mayAct ? (row.state === "active"
    ? `<button type="button" class="secondary outline" data-signal="cancel" data-pid="${row.pid}">Cancel</button>` : "")
    + `<button type="button" class="danger outline" data-signal="terminate" data-pid="${row.pid}">Terminate</button>` : "";
  const actions = (row) => mayAct ? `<td class="actions">${buttons(row)}</td>` : "";
  const figures = (row) => `<td class="num">${f.percent(row.cpu)}</td><td class="num">${f.percent(row.memory)}</td>
    <td class="num io"><span title="read">R ${f.rate(row.read_rate)}</span><span title="written">W ${f.rate(row.write_rate)}</span></td>
    <td>${waitBadges(row)}</td>`;
  const duration = (row) => `<td class="num" title="${esc(row.duration)} s">${f.duration(row.duration)}</td>`;

  const backendRow = (row) => `<tr data-key="${row.pid}" data-pid="${row.pid}">
    <td class="num">${row.pid}</td>${actions(row)}<td>${esc(row.database)}</td><td>${esc(row.user)}</td>
    <td>${row.client === null ? "<small>local</small>" : esc(row.client)}</td>
    ${figures(row)}${duration(row)}
    <td>${stateBadge(row.state)}</td>${Sentinel.longCell(row.query)}</tr>`;
  const lockRow = (row) => `<tr data-key="${row.pid}" data-pid="${row.pid}">
    <td class="num">${row.pid}</td>${actions(row)}<td>${esc(row.database)}</td><td>${esc(row.user)}</td>
    <td class="lock">${esc(row.relation.trim() || row.type)}<small>${esc(row.mode)}</small></td>
    ${figures(row)}${duration(row)}<td>${stateBadge(row.state)}</td>${Sentinel.longCell(row.query)}</tr>`;

  const table = (id, rowHtml, noun) => Sentinel.table(document.getElementById(id),
    {rowHtml, noun, count: document.getElementById(`${id}-count`)});
  const tables = {
    backends: table("backends", backendRow, "backend"),
    waiting: table("waiting", lockRow, "lock wait"),
    blocking: table("blocking", lockRow, "lock"),
  };

  const lockText = (lock) => lock.relation.trim()
    ? `${esc(lock.mode)} on ${esc(lock.relation)}` : `${esc(lock.mode)} (${esc(lock.type)})`;

  function nodeHtml(node, isRoot) {
    const age = node.xact_age === null ? "no transaction" : `in transaction for ${f.duration(node.xact_age)}`;
    // An idle session "waits" for its client: not worth saying.
    const waits = node.wait_event_type && node.wait_event_type !== "Client"
      ? ` · waits: ${esc(node.wait_event_type)}/${esc(node.wait_event)}` : "";
    const holds = node.locks.length ? ` · holds ${node.locks.map(lockText).join(", ")}` : "";
    const rootActions = isRoot ? `<span class="actions">${buttons(node)}</span>` : "";
    const children = node.blocking.length
      ? `<ul>${node.blocking.map((child) => nodeHtml(child, false)).join("")}</ul>` : "";
    return `<li data-pid="${node.pid}"><div class="node">
      <strong>${node.pid}</strong> ${esc(node.user)}@${esc(node.database)} ${stateBadge(node.state)}
      · for ${f.duration(node.duration)} · ${age}${waits}${holds} ${rootActions}
      <div class="long-text"><code tabindex="0" title="Click to show it all">${esc(node.query)}</code></div></div>${children}</li>`;
  }

  function remember(rows, nodes) {
    known = new Map();
    const walk = (node) => { known.set(node.pid, {...known.get(node.pid), ...node}); node.blocking.forEach(walk); };
    for (const row of rows) known.set(row.pid, {...known.get(row.pid), ...row});
    nodes.forEach(walk);
  }

  async function refresh() {
    const data = await Sentinel.getJSON(section.dataset.url);
    tables.backends.render(withFigures(data.activity));
    tables.waiting.render(withFigures(data.waiting));
    tables.blocking.render(withFigures(data.blocking));
    remember([...data.waiting, ...data.blocking, ...data.activity], data.locktree);
    // Keep a query shown whole across refreshes.
    const open = new Set([...tree.querySelectorAll(".long-text.expanded")].map((el) => el.closest("li").dataset.pid));
    tree.innerHTML = data.locktree.length
      ? `<ul>${data.locktree.map((root) => nodeHtml(root, true)).join("")}</ul>`
      : '<p class="empty-state">No backend is waiting for another.</p>';
    for (const li of tree.querySelectorAll("li")) {
      if (open.has(li.dataset.pid)) li.querySelector(":scope > .node > .long-text").classList.add("expanded");
    }
  }

  /* Which backend, and what it is doing, in a few words:
   * "backend 20722, postgres@postgres, idle in transaction for 5 min". */
  function who(pid) {
    const row = known.get(pid);
    if (!row) return `backend ${pid}`;
    const doing = row.xact_age !== undefined && row.xact_age !== null && row.state !== "active"
      ? `${row.state}, in transaction for ${f.duration(row.xact_age)}`
      : row.state === "active" ? `running a query for ${f.duration(row.duration)}`
      : `${row.state || "connected"}, last query started ${f.duration(row.duration)} ago`;
    return `backend ${pid}, ${row.user}@${row.database}, ${doing}`;
  }

  const questions = {
    cancel: (pid) => ({title: `Cancel the query of backend ${pid}?`, action: "Cancel the query",
      text: `Cancel the query of ${who(pid)}: the query stops with an error; the session stays connected.`}),
    terminate: (pid) => ({title: `Terminate backend ${pid}?`, action: "Terminate", danger: true,
      text: `Terminate ${who(pid)}: its session is closed and its open transaction, if any, rolled back.`}),
  };

  /* The outcome in words: a refusal is an outcome too, not a failure. */
  function describe(signal, answer, what) {
    const refused = "it is not a client backend of this instance (or it has ended).";
    if (signal === "cancel") {
      return answer.cancelled ? `Query of backend ${answer.pid} cancelled (${what}).`
        : `Backend ${answer.pid} was not cancelled: ${refused}`;
    }
    return answer.killed ? `Backend ${answer.pid} terminated (${what}).`
      : `Backend ${answer.pid} was not terminated: ${refused}`;
  }

  let control;
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-signal]");
    if (!button) return;
    const signal = button.dataset.signal;
    const pid = Number(button.dataset.pid);
    const what = who(pid).replace(/^backend \d+, /, "was ");
    if (!await Sentinel.confirm(questions[signal](pid))) return;
    const url = signal === "cancel" ? section.dataset.cancelUrl : section.dataset.killUrl;
    try {
      const answer = await Sentinel.postJSON(url, {pids: [pid]});
      const done = signal === "cancel" ? answer.backends[0].cancelled : answer.backends[0].killed;
      Sentinel.outcome(outcome, describe(signal, answer.backends[0], what), !done);
    } catch (error) {
      Sentinel.outcome(outcome, `${signal === "cancel" ? "Cancel" : "Terminate"} of backend ${pid} failed: ${error.message}`, true);
    }
    await control.refresh();
  });

  control = Sentinel.live(document.getElementById("activity-refresh"), REFRESH_MS, refresh);
})();
