/* Sentinel's shared page helpers: JSON calls, polling, sortable tables, charts.
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

  /* Make a table's columns sortable by clicking their header; the order
   * survives re-rendering of the body through `render(rows)`. */
  function sortableTable(table, columns, rowHtml) {
    const state = {key: table.dataset.sortKey || null, descending: table.dataset.sortDesc === "1", rows: []};
    const compare = (a, b) => {
      const x = a[state.key], y = b[state.key];
      const order = (typeof x === "number" && typeof y === "number")
        ? x - y : String(x ?? "").localeCompare(String(y ?? ""), undefined, {numeric: true});
      return state.descending ? -order : order;
    };
    const render = (rows) => {
      state.rows = rows;
      const sorted = state.key ? [...rows].sort(compare) : rows;
      table.tBodies[0].innerHTML = sorted.map(rowHtml).join("");
      for (const th of table.tHead.querySelectorAll("th[data-key]")) {
        th.setAttribute("aria-sort", th.dataset.key === state.key
          ? (state.descending ? "descending" : "ascending") : "none");
      }
    };
    for (const th of table.tHead.querySelectorAll("th[data-key]")) {
      th.addEventListener("click", () => {
        state.descending = state.key === th.dataset.key ? !state.descending : false;
        state.key = th.dataset.key;
        render(state.rows);
      });
    }
    return {render};
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
      return `${i === 0 ? Math.round(n) : n.toPrecision(3)} ${BINARY[i]}`;
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

  /* A time-series chart (uPlot): data is [[unix seconds...], [values...], ...]. */
  function timeChart(element, title, seriesLabels, unit = "") {
    const colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
    const options = {
      title,
      width: element.clientWidth || 600,
      height: 220,
      series: [{}, ...seriesLabels.map((label, i) => ({
        label, stroke: colors[i % colors.length], width: 1.5,
        value: (u, v) => v == null ? "-" : `${(+v).toFixed(2)}${unit}`,
      }))],
      axes: [{}, {size: 70, values: (u, ticks) => ticks.map((v) => `${v}${unit}`)}],
      // A single point would otherwise stretch the time axis over years.
      scales: {x: {time: true, range: (u, min, max) => (min === max ? [min - 60, max + 60] : [min, max])}},
    };
    const chart = new uPlot(options, [[], ...seriesLabels.map(() => [])], element);
    new ResizeObserver(() => chart.setSize({width: element.clientWidth, height: 220}))
      .observe(element);
    return chart;
  }

  return {getJSON: (url) => request("GET", url), postJSON: (url, body) => request("POST", url, body),
          every, say, sortableTable, escape, timeChart, format};
})();
