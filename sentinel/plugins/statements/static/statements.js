/* Statements page: the statements of the chosen window (from the history,
 * or since the last reset), sortable, filtered by database and user, the
 * query shown whole on click. */
"use strict";

(() => {
  const f = Sentinel.format;
  const esc = Sentinel.escape;
  const section = document.getElementById("statements");
  const choice = document.getElementById("window");
  const status = document.getElementById("window-status");

  const rowHtml = (row) => `<tr data-key="${esc(row.key)}">
    <td>${esc(row.datname ?? f.UNKNOWN)}</td><td>${esc(row.rolname ?? f.UNKNOWN)}</td>
    <td class="num">${f.count(row.calls)}</td>
    <td class="num">${f.number(row.total_exec_time, 1)}</td>
    <td class="num">${f.number(row.mean_exec_time, 3)}</td>
    <td class="num">${f.count(row.rows)}</td>
    <td class="num">${f.percent(row.hit_ratio)}</td>
    ${Sentinel.longCell(row.query)}</tr>`;
  const table = Sentinel.table(document.getElementById("statements-table"), {
    rowHtml, rowKey: (row) => row.key, noun: "statement",
    count: document.getElementById("statements-count"),
  });

  const said = (data) => {
    if (data.range === 0) return "Counters since pg_stat_statements was last reset, read now.";
    if (!data.snapshots) return "No snapshot in this window yet.";
    return `${data.snapshots} snapshot${data.snapshots === 1 ? "" : "s"} in this window,`
      + ` the last ${f.ago(data.last)}.`;
  };

  async function load() {
    const url = `${section.dataset.url}?range=${encodeURIComponent(choice.value)}`;
    try {
      const data = await Sentinel.getJSON(url);
      table.render(data.rows);
      Sentinel.say(status, said(data));
      section.dataset.loaded = choice.value;
    } catch (error) {
      table.render([]);
      Sentinel.say(status, `Could not load the statements: ${error.message}`, true);
    }
  }

  choice.addEventListener("change", () => {
    const address = new URL(window.location.href);
    address.searchParams.set("range", choice.value);
    window.history.replaceState(null, "", address);
    load();
  });
  load();
})();
