/* The Monitoring page: one chart per probe over the collector's kept runs.
 * The first load draws every kept run; each refresh asks only for the runs
 * collected since the last one drawn, and drops points the history no
 * longer keeps. */
"use strict";

(() => {
  const root = document.getElementById("monitoring");
  const interval = Number(root.dataset.interval) * 1000;
  const noRuns = document.getElementById("no-runs");
  const runsKept = document.getElementById("runs-kept");
  const status = document.getElementById("monitoring-status");
  const drawn = new Map();  // probe -> {labels, data, chart, shape}
  let last = null;  // id of the newest run drawn, sent back as ?after=

  /* Append an answer's points to what a chart holds; a label seen for the
   * first time (a new database) gets nulls for the earlier points. */
  function merge(entry, spec, oldest) {
    for (const label of spec.labels) {
      if (!entry.labels.includes(label)) {
        entry.labels.push(label);
        entry.data.push(entry.data[0].map(() => null));
      }
    }
    const count = spec.data[0].length;
    entry.data[0].push(...spec.data[0]);
    entry.labels.forEach((label, i) => {
      const j = spec.labels.indexOf(label);
      entry.data[i + 1].push(...(j >= 0 ? spec.data[j + 1] : new Array(count).fill(null)));
    });
    const gone = oldest === null ? entry.data[0].length
      : entry.data[0].findIndex((time) => time >= oldest);
    if (gone !== 0) entry.data.forEach((column) => column.splice(0, gone < 0 ? column.length : gone));
  }

  function draw(spec, oldest) {
    const element = document.getElementById(`chart-${spec.probe}`);
    if (!element) return;
    let entry = drawn.get(spec.probe);
    if (!entry) {
      entry = {labels: [], data: [[]], chart: null, shape: null};
      drawn.set(spec.probe, entry);
    }
    merge(entry, spec, oldest);
    const empty = entry.data.slice(1).every((values) => values.every((v) => v === null));
    const title = empty && entry.data[0].length ? `${spec.title} (no data)` : spec.title;
    // A new series or title needs a new chart: uPlot fixes them at creation.
    const shape = JSON.stringify([title, entry.labels, spec.unit]);
    if (entry.shape !== shape) {
      if (entry.chart) entry.chart.destroy();
      element.replaceChildren();
      entry.chart = Sentinel.timeChart(element, title, entry.labels, spec.unit);
      entry.shape = shape;
    }
    entry.chart.setData(entry.data);
    element.dataset.points = String(entry.data[0].length);
  }

  Sentinel.every(interval, async () => {
    const url = root.dataset.url + (last === null ? "" : `?after=${last}`);
    try {
      const answer = await Sentinel.getJSON(url);
      if (last === null || answer.last !== last) {
        answer.charts.forEach((spec) => draw(spec, answer.oldest));
        last = answer.last;
      }
      noRuns.hidden = answer.kept > 0;
      const times = drawn.size ? drawn.values().next().value.data[0] : [];
      runsKept.textContent = answer.kept
        ? `${answer.kept} ${answer.kept === 1 ? "run" : "runs"} kept, the last at ${new Date(times[times.length - 1] * 1000).toLocaleString()}.`
        : "No run kept yet.";
      Sentinel.say(status, "");
    } catch (error) {
      Sentinel.say(status, `Could not refresh: ${error.message}`, true);
    }
  });
})();
