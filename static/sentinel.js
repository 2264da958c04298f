/* Sentinel's shared page helpers: JSON calls, live refresh, tables, figures,
 * confirmations and outcomes, charts. docs/ui.md says how pages use them.
 * Pages are rendered on the server; these only refresh them in place. */
"use strict";

const Sentinel = (() => {
  const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  async function request(method, url, body) {
    const options = {method, credentials: "same-origin", headers: {Accept: "application/json"}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrfToken();
      options.body = JSON.stringify(body);
    }
    const answer = await fetch(url, options);
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      throw new Error(data.error || `${answer.status} ${answer.statusText}`);
    }
    return data;
  }

  /* Call fn now and every `ms`, never two at once, and not while the tab is hidden. */
  function every(ms, fn) {
    let running = false;
    const tick = async () => {
      if (running || document.hidden) return;
      running = true;
      try { await fn(); } finally { running = false; }
    };
    tick();
    return setInterval(tick, ms);
  }

  /* Show a message in the page's status line (role=status, or role=alert for errors). */
  function say(element, text, isError = false) {
    element.textContent = text;
    element.setAttribute("role", isError ? "alert" : "status");
    element.classList.toggle("error", isError);
  }

  /* One way to show each kind of figure on every page (docs/ui.md). Unknown
   * values (null, undefined, NaN) read "—". Times are 24-hour, in the
   * browser's time zone, which the header names once. */
  const UNKNOWN = "—";
  const known = (value) => value !== null && value !== undefined && !Number.isNaN(Number(value));
  const asDate = (value) => value instanceof Date ? value
    : typeof value === "number" ? new Date(value * 1000) : new Date(value);
  const pad = (n) => String(n).padStart(2, "0");
  const BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  const format = {
    UNKNOWN,
    /* "14:03:07" from a Date, unix seconds or an ISO text. */
    time(value) {
      if (!known(value) && !(value instanceof Date) && typeof value !== "string") return UNKNOWN;
      const d = asDate(value);
      return Number.isNaN(d.getTime()) ? UNKNOWN : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    },
    /* "2026-12-01 14:03:07", the full timestamp shown on hover. */
    dateTime(value) {
      if (value === null || value === undefined) return UNKNOWN;
      const d = asDate(value);
      if (Number.isNaN(d.getTime())) return UNKNOWN;
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${format.time(d)}`;
    },
    /* The browser's zone, as the header says it: "Europe/Paris (UTC+01:00)". */
    zone() {
      const minutes = -new Date().getTimezoneOffset();
      const sign = minutes < 0 ? "-" : "+";
      const offset = `UTC${sign}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
      const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
      return name ? `${name} (${offset})` : offset;
    },
    /* "45 s", "3 min 12 s", "2 h 14 min", "3 d 4 h": two units at most. */
    duration(seconds) {
      if (!known(seconds)) return UNKNOWN;
      let s = Math.max(0, Math.round(Number(seconds)));
      if (s < 60) return `${s} s`;
      const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
      const parts = [];
      for (const [unit, size] of units) {
        if (s >= size || parts.length) {
          parts.push([Math.floor(s / size), unit]);
          s %= size;
        }
        if (parts.length === 2) break;
      }
      return parts.filter(([n], i) => i === 0 || n).map(([n, unit]) => `${n} ${unit}`).join(" ");
    },
    /* "3 min ago" from a Date, unix seconds or an ISO text. */
    ago(value) {
      if (value === null || value === undefined) return UNKNOWN;
      const d = asDate(value);
      if (Number.isNaN(d.getTime())) return UNKNOWN;
      const seconds = (Date.now() - d.getTime()) / 1000;
      return seconds < 5 ? "just now" : `${format.duration(seconds)} ago`;
    },
    /* Binary units, three significant figures: "12.3 MiB". */
    bytes(value) {
      if (!known(value)) return UNKNOWN;
      let n = Number(value), i = 0;
      while (Math.abs(n) >= 1024 && i < BINARY.length - 1) { n /= 1024; i += 1; }
      // Three significant figures without exponents: 1000 to 1023 of a unit stay "1010".
      const digits = i === 0 || Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
      return `${n.toFixed(digits)} ${BINARY[i]}`;
    },
    rate(value) { return known(value) ? `${format.bytes(value)}/s` : UNKNOWN; },
    /* "12.3 %" (a percentage already, 0-100). */
    percent(value, digits = 1) { return known(value) ? `${Number(value).toFixed(digits)} %` : UNKNOWN; },
    /* Counts are integers, grouped: "12 345". */
    count(value) {
      return known(value) ? Math.round(Number(value)).toLocaleString("en-US").replace(/,/g, "\u202f") : UNKNOWN;
    },
    /* Any other number, `digits` after the point. */
    number(value, digits = 2) { return known(value) ? Number(value).toFixed(digits) : UNKNOWN; },
  };

  const escape = (value) => String(value ?? "").replace(/[&<>"']/g,
    (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

  /* A moment as the page shows it: `text` ("3 min ago", "14:03:07"), the
   * full timestamp and zone on hover. */
  const timeHtml = (value, text) => {
    const d = asDate(value);
    if (value === null || value === undefined || Number.isNaN(d.getTime())) return UNKNOWN;
    return `<time datetime="${d.toISOString()}" title="${format.dateTime(d)} ${escape(format.zone())}">${escape(text)}</time>`;
  };

  /* Fill every <time data-format="ago|time|dateTime" datetime="..."> under
   * `root`, with its full timestamp on hover. */
  function formatTimes(root = document) {
    for (const element of root.querySelectorAll("time[data-format]")) {
      const value = element.getAttribute("datetime");
      element.textContent = format[element.dataset.format](value);
      element.title = `${format.dateTime(value)} ${format.zone()}`;
    }
  }

  /* A status badge: status is ok, warning, critical or unknown. */
  const badge = (text, status) => `<span class="badge status-${status}">${escape(text)}</span>`;

  /* A cell for long text (a query): it takes the row's remaining width,
   * truncated; a click shows it whole, monospace, to read or copy. */
  const longCell = (text) => text
    ? `<td class="long"><code tabindex="0" title="Click to show it all">${escape(text)}</code></td>`
    : `<td class="long"><small>${UNKNOWN}</small></td>`;

  /* Expand or fold a long cell, unless the click ended a text selection. */
  function toggleLong(event) {
    const cell = event.target.closest("td.long, .long-text");
    if (!cell || !cell.querySelector("code")) return null;
    if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return null;
    if (event.type === "click" && String(window.getSelection() || "")) return null;
    event.preventDefault();
    cell.classList.toggle("expanded");
    return cell;
  }
  document.addEventListener("click", toggleLong);
  document.addEventListener("keydown", (event) => {
    if (event.target.closest?.("td.long, .long-text")) toggleLong(event);
  });

  /* One table helper for every page: rows sorted by clicking a header
   * (th[data-key]; data-type="number" sorts and aligns as numbers), a text
   * filter over the whole row, a select per category column
   * (th[data-filter]), an empty state that says why, and expanded long
   * cells kept across refreshes. `rowHtml(row)` gives the <tr>, carrying
   * data-key="<rowKey(row)>". render(rows) redraws, keeping the order and
   * the filters. */
  function table(element, {rowHtml, rowKey = (row) => row.pid, empty, count, noun = "row"}) {
    const state = {key: element.dataset.sortKey || null, descending: element.dataset.sortDesc === "1",
                   rows: [], text: "", categories: {}, expanded: new Set()};
    const headers = [...element.tHead.querySelectorAll("th")];
    const sortable = headers.filter((th) => th.dataset.key);
    for (const th of headers) {
      if (th.dataset.type === "number") th.classList.add("num");
    }
    const emptyText = empty || element.dataset.empty || "Nothing to show.";

    // The tools above the table: a text filter, and a select per category.
    const tools = document.createElement("div");
    tools.className = "table-tools";
    const label = element.getAttribute("aria-label") || element.id;
    tools.innerHTML = `<input type="search" placeholder="Filter" aria-label="Filter ${escape(label)}">`
      + headers.filter((th) => th.dataset.filter).map((th) => `<select data-filter="${th.dataset.key}"
          aria-label="${escape(th.textContent.trim())} of ${escape(label)}"><option value="">${escape(th.textContent.trim())}: all</option></select>`).join("");
    (element.closest(".table-box") || element).before(tools);
    const search = tools.querySelector("input");
    search.addEventListener("input", () => { state.text = search.value.trim().toLowerCase(); render(state.rows); });
    for (const select of tools.querySelectorAll("select")) {
      select.addEventListener("change", () => { state.categories[select.dataset.filter] = select.value; render(state.rows); });
    }

    const compare = (a, b) => {
      const x = a[state.key], y = b[state.key];
      // Unknown values go last whichever the order.
      if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;
      if (y === null || y === undefined) return -1;
      const order = (typeof x === "number" && typeof y === "number")
        ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
      return state.descending ? -order : order;
    };
    const matches = (row) => {
      for (const [key, value] of Object.entries(state.categories)) {
        if (value && String(row[key] ?? "") !== value) return false;
      }
      if (!state.text) return true;
      return Object.values(row).some((value) =>
        (typeof value === "string" || typeof value === "number") && String(value).toLowerCase().includes(state.text));
    };

    function fillSelects(rows) {
      for (const select of tools.querySelectorAll("select")) {
        const key = select.dataset.filter;
        const values = [...new Set(rows.map((row) => row[key]).filter((v) => v !== null && v !== undefined && v !== ""))]
          .map(String).sort();
        const chosen = select.value;
        if (chosen && !values.includes(chosen)) values.push(chosen);
        const first = select.options[0].outerHTML;
        select.innerHTML = first + values.map((v) => `<option>${escape(v)}</option>`).join("");
        select.value = chosen;
      }
    }

    function render(rows) {
      state.rows = rows;
      fillSelects(rows);
      const shown = rows.filter(matches);
      const sorted = state.key ? [...shown].sort(compare) : shown;
      const columns = headers.length;
      element.tBodies[0].innerHTML = sorted.length ? sorted.map(rowHtml).join("")
        : `<tr class="empty"><td colspan="${columns}">${escape(rows.length
          ? `No ${noun} matches the filter (${rows.length} hidden).` : emptyText)}</td></tr>`;
      for (const tr of element.tBodies[0].rows) {
        if (state.expanded.has(tr.dataset.key)) tr.querySelector("td.long")?.classList.add("expanded");
      }
      for (const th of sortable) {
        th.setAttribute("aria-sort", th.dataset.key === state.key
          ? (state.descending ? "descending" : "ascending") : "none");
      }
      if (count) count.textContent = shown.length === rows.length ? `(${rows.length})` : `(${shown.length} of ${rows.length})`;
    }

    for (const th of sortable) {
      th.tabIndex = 0;
      const sort = () => {
        state.descending = state.key === th.dataset.key ? !state.descending : th.dataset.type === "number";
        state.key = th.dataset.key;
        render(state.rows);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (event) => { if (event.key === "Enter") sort(); });
    }
    // Expanded long cells stay expanded when the rows are redrawn.
    element.addEventListener("click", () => setTimeout(() => {
      state.expanded = new Set([...element.querySelectorAll("td.long.expanded")]
        .map((cell) => cell.closest("tr").dataset.key));
    }));
    return {render, rowKey};
  }

  /* Refresh a live page every `ms` through `fn`, with its control (the
   * refresh_control macro): the status says when it last refreshed, a button
   * pauses and resumes, and nothing is polled while the tab is hidden (it
   * refreshes at once when shown again). With `immediate` false, the page
   * was just rendered with fresh figures: the first call waits `ms`.
   * Returns {refresh()}. */
  function live(control, ms, fn, {immediate = true} = {}) {
    const status = control.querySelector(".refresh-status");
    const button = control.querySelector(".refresh-toggle");
    let timer = null, paused = false, running = false, last = null;
    const every = `every ${format.duration(ms / 1000)}`;
    const showState = () => {
      if (paused) {
        say(status, last ? `Paused; last refreshed at ${format.time(last)}.` : "Paused.");
      }
    };
    async function refresh() {
      if (running) return;
      running = true;
      clearTimeout(timer);
      try {
        await fn();
        last = new Date();
        say(status, `Refreshed at ${format.time(last)}, ${every}.`);
        status.title = `${format.dateTime(last)} ${format.zone()}`;
      } catch (error) {
        say(status, `Could not refresh at ${format.time(new Date())}: ${error.message}`, true);
      } finally {
        running = false;
        showState();
        schedule();
      }
    }
    function schedule() {
      clearTimeout(timer);
      if (!paused && !document.hidden) timer = setTimeout(refresh, ms);
    }
    button.addEventListener("click", () => {
      paused = !paused;
      button.textContent = paused ? "Resume" : "Pause";
      button.setAttribute("aria-pressed", String(paused));
      if (paused) { clearTimeout(timer); showState(); } else refresh();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) clearTimeout(timer);
      else if (!paused) refresh();
    });
    if (immediate) {
      refresh();
    } else {
      last = new Date();
      say(status, `Refreshed at ${format.time(last)}, ${every}.`);
      schedule();
    }
    return {refresh};
  }

  /* Ask before a change, in the page's <dialog id="confirm"> (_confirm.html):
   * `title` and `text` say what it will do, `action` labels the button,
   * `danger` styles it so. Resolves to true when confirmed. */
  function confirm({title, text, action = "Confirm", danger = false}) {
    const dialog = document.getElementById("confirm");
    const ok = document.getElementById("confirm-ok");
    return new Promise((resolve) => {
      document.getElementById("confirm-title").textContent = title;
      document.getElementById("confirm-text").textContent = text;
      ok.textContent = action;
      ok.classList.toggle("danger", danger);
      const finish = (answer) => { if (dialog.open) dialog.close(); resolve(answer); };
      ok.onclick = () => finish(true);
      document.getElementById("confirm-back").onclick = () => finish(false);
      dialog.oncancel = () => resolve(false);  // Escape closes the dialog
      dialog.showModal();
    });
  }

  /* Show an outcome: when it happened (full timestamp on hover), then what. */
  function outcome(element, text, isError = false) {
    const now = new Date();
    element.innerHTML = `${timeHtml(now, format.time(now))} ${escape(text)}`;
    element.setAttribute("role", isError ? "alert" : "status");
    element.classList.toggle("error", isError);
    element.classList.toggle("ok", !isError);
  }

  // The layout: the browser's time zone in the header, and the narrow
  // screens' menu button.
  document.addEventListener("DOMContentLoaded", () => {
    const zone = document.getElementById("time-zone");
    if (zone) {
      zone.textContent = `Times in ${format.zone()}`;
    }
    formatTimes();
    const menu = document.getElementById("menu-toggle");
    if (menu) {
      menu.addEventListener("click", () => {
        const open = menu.getAttribute("aria-expanded") !== "true";
        menu.setAttribute("aria-expanded", String(open));
        document.body.classList.toggle("menu-open", open);
      });
    }
  });

  return {getJSON: (url) => request("GET", url), postJSON: (url, body) => request("POST", url, body),
          every, live, say, outcome, confirm, table, escape, badge, longCell,
          timeHtml, formatTimes, format};
})();
