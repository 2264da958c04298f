/* The Monitoring page: one chart per probe over the collector's kept runs of
 * the chosen range. The first load draws them all; each refresh asks only
 * for the runs collected since the last one drawn, and drops the points out
 * of the range or no longer kept. */
"use strict";

(() => {
  const root = document.getElementById("monitoring");
  const interval = Number(root.dataset.interval);
  const noRuns = document.getElementById("no-runs");
  const runsKept = document.getElementById("runs-kept");
  const drawn = new Map();  // probe -> {labels, data, chart}
  let last = null;  // id of the newest run drawn, sent back as ?after=
  let nextRun = null;  // the timer of the refresh just after the next run

  for (const element of document.querySelectorAll("#charts figure.chart")) {
    const labels = element.dataset.labels ? element.dataset.labels.split(",") : [];
    drawn.set(element.dataset.probe, {
      labels: [...labels], data: [[], ...labels.map(() => [])],
      chart: Sentinel.timeChart(element, {title: element.getAttribute("aria-label"), kind: element.dataset.kind, labels}),
    });
  }

  let range = Sentinel.rangeChoice(document.getElementById("range"), (seconds) => {
    range = seconds;
    last = null;
    for (const entry of drawn.values()) {
      entry.data = [[], ...entry.labels.map(() => [])];
      entry.note = undefined;
    }
    refresher.refresh();
  });

  /* Append an answer's points to what a chart holds (a label seen for the
   * first time, a new database, gets nulls for the earlier points), then
   * drop those before `since`. */
  function merge(entry, spec, since) {
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
    const gone = entry.data[0].findIndex((time) => time >= since);
    if (gone !== 0) entry.data.forEach((column) => column.splice(0, gone < 0 ? column.length : gone));
  }

  function draw(answer) {
    // The next run, on the browser's clock, brings a chart waiting for its first value.
    const skew = answer.now - Date.now() / 1000;
    const due = answer.last_at === null ? null : answer.last_at + interval - skew;
    for (const spec of answer.charts) {
      const entry = drawn.get(spec.probe);
      if (!entry) continue;
      merge(entry, spec, answer.since);
      if (spec.data[0].length || entry.note === undefined) entry.note = spec.note;
      entry.chart.draw(entry.data, {
        labels: entry.labels, span: Sentinel.timeSpan(entry.data[0], range, interval),
        note: entry.note, due,
      });
    }
  }

  async function refresh() {
    const url = new URL(root.dataset.url, location.href);
    url.searchParams.set("range", range);
    if (last !== null) url.searchParams.set("after", last);
    const answer = await Sentinel.getJSON(url);
    if (!Array.isArray(answer.charts)) throw new Error("signed out; reload the page");
    draw(answer);
    last = answer.last;
    // Refresh again just after the next run, whenever the page was opened:
    // the refreshes then follow the runs instead of lagging up to an interval.
    clearTimeout(nextRun);
    if (answer.last_at !== null) {
      const wait = answer.last_at + interval + 2 - answer.now;
      if (wait > 0 && wait < interval) nextRun = setTimeout(() => paused() || refresher.refresh(), wait * 1000);
    }
    noRuns.hidden = answer.kept > 0;
    runsKept.textContent = answer.kept
      ? `${Sentinel.format.count(answer.kept)} ${answer.kept === 1 ? "run" : "runs"} kept, the last at`
        + ` ${Sentinel.format.time(answer.last_at)}; one every ${Sentinel.format.duration(interval)}.`
      : "No run kept yet.";
  }

  const control = document.getElementById("monitoring-refresh");
  const paused = () => control.querySelector(".refresh-toggle").getAttribute("aria-pressed") === "true";
  const refresher = Sentinel.live(control, interval * 1000, refresh);
})();
