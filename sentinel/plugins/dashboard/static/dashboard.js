/* The Dashboard page: six charts of the collected samples over the chosen
 * range, extended in place with the samples taken since the last one drawn. */
"use strict";

(() => {
  const root = document.getElementById("dashboard");
  const interval = Number(root.dataset.interval);
  const charts = document.getElementById("charts");
  const lastSample = document.getElementById("last-sample");
  const noSamples = document.getElementById("no-samples");

  // Each chart: the kind of its figures (static/charts.js), its series, and
  // how to read them from a point; the title is the figure's aria-label.
  const definitions = [
    {id: "cpu", kind: "percent", labels: ["user", "system", "iowait"],
     values: (p) => [p.cpu.user, p.cpu.system, p.cpu.iowait]},
    {id: "memory", kind: "percent", labels: ["used by processes", "cached"],
     values: (p) => [p.memory.active, p.memory.cached]},
    {id: "loadaverage", kind: "number", labels: ["1 min"], values: (p) => [p.loadaverage]},
    {id: "tps", kind: "per_second", labels: ["commits + rollbacks"], values: (p) => [p.tps]},
    {id: "hitratio", kind: "percent", labels: ["hit ratio"], values: (p) => [p.hitratio]},
    {id: "active_backends", kind: "count", labels: ["active"], values: (p) => [p.active_backends]},
  ];
  // PostgreSQL's figures are missing from a sample taken while it did not answer.
  const FROM_POSTGRES = new Set(["tps", "hitratio", "active_backends"]);
  for (const definition of definitions) {
    const element = document.getElementById(`chart-${definition.id}`);
    definition.chart = Sentinel.timeChart(element, {
      title: element.getAttribute("aria-label"), kind: definition.kind, labels: definition.labels});
  }

  let range = Sentinel.rangeChoice(document.getElementById("range"), (seconds) => {
    range = seconds;
    last = null;
    points = [];
    refresher.refresh();
  });
  let points = [];  // those drawn, oldest first
  let last = null;  // time of the newest sample drawn, echoed back as ?since=
  let skew = 0;  // the server's clock minus the browser's, in seconds

  function showLastSample() {
    if (!lastSample.dataset.time) return;
    lastSample.textContent = Sentinel.format.time(Number(lastSample.dataset.time));
    lastSample.title = `${Sentinel.format.dateTime(Number(lastSample.dataset.time))} ${Sentinel.format.zone()}`;
  }

  function draw() {
    const times = points.map((point) => point.time);
    const span = Sentinel.timeSpan(times, range, interval);
    const newest = points[points.length - 1];
    // The first value is due at the next sample (the browser's clock).
    const due = newest ? newest.time + interval - skew : null;
    for (const definition of definitions) {
      const columns = definition.labels.map((label, i) => points.map((point) => definition.values(point)[i]));
      const down = FROM_POSTGRES.has(definition.id) && newest && newest.hitratio === null;
      definition.chart.draw([times, ...columns], {
        labels: definition.labels, span, due,
        note: down ? "PostgreSQL did not answer at the last sample." : null,
      });
    }
    charts.dataset.points = String(points.length);
    if (newest) {
      last = newest.time;
      lastSample.dataset.time = String(last);
      showLastSample();
      noSamples.hidden = true;
    }
  }

  async function refresh() {
    const url = new URL(root.dataset.url, location.href);
    url.searchParams.set("range", range);
    if (last !== null) url.searchParams.set("since", last);
    const answer = await Sentinel.getJSON(url);
    // A session that ended is redirected to the sign-in page: no points.
    if (!Array.isArray(answer.points)) throw new Error("signed out; reload the page");
    skew = answer.now - Date.now() / 1000;
    const since = answer.now - range;
    points = [...points, ...answer.points].filter((point) => point.time >= since);
    draw();
  }

  showLastSample();
  const refresher = Sentinel.live(document.getElementById("dashboard-refresh"), interval * 1000, refresh);
})();
