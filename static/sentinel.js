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
          every, say, sortableTable, escape, timeChart};
})();
