/* The Dashboard page: six charts of the collected samples, extended in place
 * with the samples taken since the last one drawn. */
"use strict";

(() => {
  const root = document.getElementById("dashboard");
  const interval = Number(root.dataset.interval) * 1000;
  const historyLength = Number(root.dataset.history);
  const charts = document.getElementById("charts");
  const lastSample = document.getElementById("last-sample");
  const noSamples = document.getElementById("no-samples");
  const status = document.getElementById("dashboard-status");

  // Each chart: its series, how to read them from a point, and for shares a
  // fixed 0-100 scale (a hit ratio between 98.43 and 98.44 % is a flat line).
  const definitions = [
    {id: "cpu", title: "CPU", labels: ["user", "system", "iowait"], unit: "%", percent: true,
     values: (p) => [p.cpu.user, p.cpu.system, p.cpu.iowait]},
    {id: "memory", title: "Memory", labels: ["used by processes", "cached"], unit: "%",
     percent: true, values: (p) => [p.memory.active, p.memory.cached]},
    {id: "loadaverage", title: "Load average", labels: ["1 min"], unit: "",
     values: (p) => [p.loadaverage]},
    {id: "tps", title: "Transactions per second", labels: ["commits + rollbacks"], unit: "",
     values: (p) => [p.tps]},
    {id: "hitratio", title: "Cache hit ratio", labels: ["hit ratio"], unit: "%", percent: true,
     values: (p) => [p.hitratio]},
    {id: "active_backends", title: "Active backends", labels: ["active"], unit: "",
     values: (p) => [p.active_backends]},
  ];
  for (const definition of definitions) {
    const element = document.getElementById(`chart-${definition.id}`);
    definition.chart = Sentinel.timeChart(element, definition.title, definition.labels, definition.unit);
    definition.data = [[], ...definition.labels.map(() => [])];
  }

  let last = null;  // time of the newest sample drawn, echoed back as ?since=

  function draw(points) {
    for (const definition of definitions) {
      const columns = definition.data;
      for (const point of points) {
        columns[0].push(point.time);
        definition.values(point).forEach((value, i) => columns[i + 1].push(value));
      }
      const excess = columns[0].length - historyLength;
      if (excess > 0) columns.forEach((column) => column.splice(0, excess));
      definition.chart.setData(columns);
      if (definition.percent) definition.chart.setScale("y", {min: 0, max: 100});
    }
    last = points[points.length - 1].time;
    charts.dataset.points = String(definitions[0].data[0].length);
    lastSample.dataset.time = String(last);
    lastSample.textContent = new Date(last * 1000).toLocaleString();
    noSamples.hidden = true;
  }

  Sentinel.every(interval, async () => {
    const url = root.dataset.url + (last === null ? "" : `?since=${last}`);
    try {
      const answer = await Sentinel.getJSON(url);
      // A session that ended is redirected to the sign-in page: no points.
      if (!Array.isArray(answer.points)) throw new Error("signed out; reload the page");
      if (answer.points.length) draw(answer.points);
      Sentinel.say(status, "");
    } catch (error) {
      Sentinel.say(status, `Could not refresh: ${error.message}`, true);
    }
  });
})();
