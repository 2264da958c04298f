/* Time-series charts (uPlot), drawn one way on every page that charts
 * (docs/ui-charts.md): figures through Sentinel.format; y axes from 0, with
 * integer ticks for counts and binary units for sizes and rates; 24-hour
 * time ticks in the browser's zone, spaced so that they never collide;
 * legends showing the latest values until hovered; a sentence in place of
 * an empty frame; and a choice of time range. Needs sentinel.js and uPlot. */
"use strict";

(() => {
  const format = Sentinel.format;
  const HEIGHT = 220;
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  // Time tick steps (seconds), and the room a tick needs: wider than its
  // label ("23:59", "23:59:59" when ticks are less than a minute apart, a
  // date line under it) with a gap.
  const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
                      3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400];
  const timeTickSpace = (u, axis, min, max, width) => ((max - min) * 56 / width >= 60 ? 56 : 80);

  const powers = (steps, base, from, to) => {
    const incrs = [];
    for (let k = from; k <= to; k++) incrs.push(...steps.map((step) => step * base ** k));
    return incrs;
  };
  // Decimal steps for plain numbers, whole ones for counts, and steps in
  // powers of two of B, KiB, MiB... for sizes (ticks read "256 KiB", "1.50 MiB").
  const DECIMAL = powers([1, 2, 5], 10, -3, 12);
  const WHOLE = powers([1, 2, 5], 10, 0, 12);
  const BINARY = powers([1, 2, 4, 8, 16, 32, 64, 128, 256, 512], 1024, 0, 5);
  const digitsFor = (incr) => (incr >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(incr))));

  /* Each kind of figure: its legend text, its tick labels (by the tick
   * step), its tick steps, and the least top of its axis (a flat zero line
   * still shows a scale; 1.85 % of bloat is not blown up into a trend). */
  const KINDS = {
    count: {value: format.count, tick: format.count, incrs: WHOLE, top: 4},
    percent: {value: (v) => format.percent(v), tick: (v, incr) => format.percent(v, digitsFor(incr)),
              incrs: DECIMAL, top: 10, max: 100},
    bytes: {value: format.bytes, tick: format.bytes, incrs: BINARY, top: 1024},
    rate: {value: format.rate, tick: format.rate, incrs: BINARY, top: 1024},
    per_second: {value: (v) => `${format.number(v, 1)}/s`, tick: (v, incr) => `${format.number(v, digitsFor(incr))}/s`,
                 incrs: DECIMAL, top: 1},
    number: {value: (v) => format.number(v, 2), tick: (v, incr) => format.number(v, digitsFor(incr)),
             incrs: DECIMAL, top: 1},
  };

  const known = (v) => v !== null && v !== undefined;
  // The highest value of all series (uPlot's own looks only between the
  // indexes it finds for the time axis, which misses points that share a time).
  const highest = (data) => Math.max(0, ...data.slice(1).map((values) => Math.max(0, ...values.filter(known))));

  /* Time tick labels: "14:03" (with seconds when ticks are closer than a
   * minute), and the date on a second line where the day changes. */
  function timeTicks(splits, incr) {
    let day = null;
    return splits.map((split, i) => {
      const time = format.time(split);
      const text = incr < 60 ? time : time.slice(0, 5);
      const date = format.dateTime(split).slice(5, 10);
      const changed = day !== null && date !== day;
      const spansDays = i === 0 && format.dateTime(splits[splits.length - 1]).slice(5, 10) !== date;
      day = date;
      return changed || spansDays ? `${text}\n${date}` : text;
    });
  }

  /* Index of the newest known value of each series ([0]: the newest of them). */
  function latestIndexes(data) {
    const indexes = data.slice(1).map((values) => {
      for (let i = values.length - 1; i >= 0; i--) if (known(values[i])) return i;
      return null;
    });
    const newest = indexes.reduce((a, b) => (b === null || (a !== null && a >= b) ? a : b), null);
    return [newest, ...indexes];
  }

  /* The tick labels an axis drew and where (CSS px), kept on the chart's
   * element as data-x-ticks / data-y-ticks: canvas text is invisible to
   * anything but eyes, and this lets a test check that labels never overlap. */
  function keepTicks(u, element) {
    const ctx = u.ctx;
    const ratio = uPlot.pxRatio || window.devicePixelRatio || 1;
    ["x", "y"].forEach((scale, axis) => {
      const ticks = u.axes[axis].ticksDrawn || [];
      ctx.save();
      ctx.font = u.axes[axis].font[0];
      element.dataset[`${scale}Ticks`] = JSON.stringify(ticks.map(({split, text}) => {
        const width = Math.max(...text.split("\n").map((line) => ctx.measureText(line).width)) / ratio;
        const at = u.valToPos(split, scale);
        return {text, from: at - width / 2, to: at + width / 2};
      }));
      ctx.restore();
    });
  }

  /* What to say in place of a chart with nothing to draw: `note` (why), or
   * when the first value is `due` (unix seconds, the browser's clock). */
  function emptyText(note, due) {
    if (note) return note;
    if (due === null || due === undefined) return "collecting: no sample yet; is the worker running?";
    const seconds = Math.round(due - Date.now() / 1000);
    if (seconds > 0) return `collecting: first data in ${format.duration(seconds)}`;
    if (seconds > -10) return "collecting: first data any moment now";
    return `collecting: first data was due ${format.duration(-seconds)} ago; is the worker running?`;
  }

  const waiting = new Set();  // charts counting down to their first data
  setInterval(() => waiting.forEach((chart) => chart.sayWhy()), 1000);

  /* A chart in `element`, of a `kind` of KINDS, titled `title`. Returns
   * {draw(data, {labels, span, note, due})}: data is [[unix seconds...],
   * [values of labels[0]...], ...]; span [from, to] the time axis (see
   * Sentinel.timeSpan); with no known value, the chart says `note`, or
   * when its first value is `due`. */
  function timeChart(element, {title, kind, labels = []}) {
    const figures = KINDS[kind];
    let plot = null, shownLabels = null, xRange = null, emptyState = null;
    const note = document.createElement("p");
    note.className = "chart-note";
    note.setAttribute("role", "status");
    note.hidden = true;
    element.append(note);

    function showLatest(u) {
      if (u.cursor.idx === null || u.cursor.idx === undefined) u.setLegend({idxs: latestIndexes(u.data)}, false);
    }

    function create(labels) {
      if (plot) plot.destroy();
      const options = {
        title,
        width: element.clientWidth || 600,
        height: HEIGHT,
        series: [
          {label: "Time", value: (u, v) => (known(v) ? format.dateTime(v) : format.UNKNOWN)},
          ...labels.map((label, i) => ({
            label, stroke: COLORS[i % COLORS.length], width: 1.5,
            value: (u, v) => (known(v) ? figures.value(v) : format.UNKNOWN),
          })),
        ],
        scales: {
          x: {time: true, range: (u, min, max) => xRange || [min, max]},
          y: {range: (u) => [0, Math.min(figures.max ?? Infinity, Math.max(figures.top, 1.1 * highest(u.data)))]},
        },
        axes: [
          {space: timeTickSpace, incrs: TIME_INCRS,
           size: (u, values) => (values && values.some((v) => v.includes("\n")) ? 56 : 36),
           values: (u, splits, axis, space, incr) => record(u, 0, splits, timeTicks(splits, incr))},
          {size: 80, incrs: figures.incrs,
           values: (u, splits, axis, space, incr) => record(u, 1, splits, splits.map((v) => figures.tick(v, incr)))},
        ],
        hooks: {setLegend: [showLatest], draw: [(u) => keepTicks(u, element)]},
      };
      plot = new uPlot(options, [[], ...labels.map(() => [])], element);
      element.insertBefore(plot.root, note);
      shownLabels = JSON.stringify(labels);
    }

    function record(u, axis, splits, texts) {
      u.axes[axis].ticksDrawn = splits.map((split, i) => ({split, text: texts[i]}));
      return texts;
    }

    new ResizeObserver(() => plot && plot.setSize({width: element.clientWidth, height: HEIGHT})).observe(element);

    const chart = {
      draw(data, {labels, span = null, note: why = null, due = null}) {
        if (JSON.stringify(labels) !== shownLabels) create(labels);
        xRange = span;
        plot.setData(data);
        showLatest(plot);
        element.dataset.points = String(data[0].length);
        const empty = data.slice(1).every((values) => !values.some(known));
        emptyState = empty ? {why, due} : null;
        element.classList.toggle("chart-empty", empty);
        note.hidden = !empty;
        if (empty) waiting.add(chart); else waiting.delete(chart);
        note.textContent = "";
        chart.sayWhy();
      },
      sayWhy() {
        if (emptyState) note.textContent = emptyText(emptyState.why, emptyState.due);
      },
    };
    create(labels);
    // Until the page's first data arrives.
    element.classList.add("chart-empty");
    note.textContent = "Loading…";
    note.hidden = false;
    return chart;
  }

  /* The time axis of a chart of `times` (unix seconds, oldest first): what
   * was collected, at most `range` seconds back from the newest, and at
   * least a few `interval`s so that one point does not stretch it. */
  function timeSpan(times, range, interval) {
    if (!times.length) return null;
    const newest = times[times.length - 1];
    return [Math.max(newest - range, Math.min(times[0], newest - 4 * interval)), newest];
  }

  /* Fill the range <select> from data-ranges (seconds, the last one all that
   * is kept) and data-range (the chosen one); on a change, the page's URL
   * keeps the choice and `onChange(seconds)` redraws. */
  function rangeChoice(select, onChange) {
    const ranges = select.dataset.ranges.split(",").map(Number);
    select.innerHTML = ranges.map((seconds, i) => `<option value="${seconds}">${format.duration(seconds)}`
      + `${i === ranges.length - 1 ? " (all kept)" : ""}</option>`).join("");
    select.value = select.dataset.range;
    select.addEventListener("change", () => {
      const url = new URL(location.href);
      url.searchParams.set("range", select.value);
      history.replaceState(null, "", url);
      onChange(Number(select.value));
    });
    return Number(select.value);
  }

  Object.assign(Sentinel, {timeChart, timeSpan, rangeChoice});
})();
