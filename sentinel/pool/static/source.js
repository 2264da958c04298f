/* A source's page: its status (the word and colour of the Sources list),
 * last error and last successful collection, its replication slots' health,
 * and charts of what the collection kept over the chosen range, for the
 * whole instance or one discovered database. The first load draws the whole
 * range; each refresh asks only for the samples since the newest drawn
 * (charts with nothing drawn yet are read whole, to say why). */
"use strict";

(() => {
  const f = Sentinel.format;
  const esc = Sentinel.escape;
  const root = document.getElementById("source");
  const embedded = JSON.parse(document.getElementById("source-data").textContent);
  const every = Number(root.dataset.every) || 60;
  const databaseSelect = document.getElementById("database");
  const drawn = new Map();  // chart id -> {labels, data, chart, last (slot)}
  let database = databaseSelect ? databaseSelect.value : "";

  // -- status ------------------------------------------------------------------

  const DETAILS = {
    connected: "collected on schedule",
    late: "connected, but no collection for over twice its shortest interval",
    unreachable: "the last run could not connect",
    "not checked yet": "no collection tried since it was added or enabled",
    disabled: "kept, but not collected",
  };

  function showStatus(source) {
    document.getElementById("source-status-tile").className = `tile status-${source.status_level}`;
    document.getElementById("source-status").textContent = source.status;
    document.getElementById("source-status-detail").textContent = DETAILS[source.status] || "";
    document.getElementById("source-last-collected").innerHTML = source.last_collected_at === null
      ? esc(f.UNKNOWN) : Sentinel.timeHtml(source.last_collected_at, f.ago(source.last_collected_at));
    const error = document.getElementById("source-last-error");
    error.textContent = source.last_error || "";
    error.hidden = !source.last_error;
    const toggle = document.getElementById("toggle-source");
    if (toggle) {
      toggle.textContent = source.enabled ? "Disable" : "Enable";
      toggle.dataset.enabled = String(source.enabled);
    }
  }

  // -- slots -------------------------------------------------------------------

  const NOT_CHECKED = "<small>not checked yet</small>";

  /* A slot the collection found gone from the server has no WAL position. */
  function health(slot) {
    if (slot.checked_at === null) return ["not checked yet", "unknown"];
    if (!slot.active && slot.retained_wal_bytes === null) return ["not on the server", "critical"];
    return slot.active ? ["active", "ok"] : ["inactive", "warning"];
  }

  function slotHtml(slot) {
    const [text, level] = health(slot);
    const number = (value, shown) => `<td class="num">${slot.checked_at === null ? NOT_CHECKED
      : esc(value === null ? f.UNKNOWN : shown(value))}</td>`;
    return `<tr data-key="${esc(slot.slot_name)}">
      <td><code>${esc(slot.slot_name)}</code>${slot.status === "disabled" ? " <small>(disabled)</small>" : ""}</td>
      <td><code>${esc(slot.publication_name)}</code></td>
      <td>${Sentinel.badge(text, level)}</td>
      ${number(slot.retained_wal_bytes, f.bytes)}
      ${number(slot.xmin_age, (age) => `${f.count(age)} transactions`)}
      <td class="num">${slot.checked_at === null ? NOT_CHECKED : Sentinel.timeHtml(slot.checked_at, f.ago(slot.checked_at))}</td>
    </tr>`;
  }
  const slots = Sentinel.table(document.getElementById("slots"),
                               {rowHtml: slotHtml, rowKey: (slot) => slot.slot_name, noun: "slot"});
  const showSlots = (list) => slots.render(list.map((slot) => ({...slot, health: health(slot)[0]})));

  // -- charts ------------------------------------------------------------------

  const empty = (labels) => [[], ...labels.map(() => [])];
  for (const element of document.querySelectorAll("#charts figure.chart")) {
    const labels = element.dataset.labels ? element.dataset.labels.split(",") : [];
    drawn.set(element.dataset.chart, {
      labels: [...labels], data: empty(labels), last: null,
      chart: Sentinel.timeChart(element, {title: element.getAttribute("aria-label"), kind: element.dataset.kind, labels}),
    });
  }
  const hasPoints = (entry) => entry.data[0].length > 0;

  function reset() {
    for (const entry of drawn.values()) {
      entry.data = empty(entry.labels);
      entry.last = null;
    }
  }

  /* Append an answer's points newer than those drawn (a label seen for the
   * first time gets nulls for the earlier points), then drop those before `since`. */
  function merge(entry, spec, since) {
    for (const label of spec.labels) {
      if (!entry.labels.includes(label)) {
        entry.labels.push(label);
        entry.data.push(entry.data[0].map(() => null));
      }
    }
    const newest = entry.data[0].length ? entry.data[0][entry.data[0].length - 1] : -Infinity;
    const fresh = spec.data[0].map((time, i) => [time, i]).filter(([time]) => time > newest).map(([, i]) => i);
    entry.data[0].push(...fresh.map((i) => spec.data[0][i]));
    entry.labels.forEach((label, k) => {
      const j = spec.labels.indexOf(label);
      entry.data[k + 1].push(...fresh.map((i) => (j >= 0 ? spec.data[j + 1][i] : null)));
    });
    const gone = entry.data[0].findIndex((time) => time >= since);
    if (gone !== 0) entry.data.forEach((column) => column.splice(0, gone < 0 ? column.length : gone));
    if (spec.last !== null) entry.last = Math.max(entry.last ?? 0, spec.last);
  }

  /* What a chart with nothing to draw says: the server's reason, or when its
   * first point is expected (on the browser's clock, `skew` the server's lead). */
  function emptyNote(spec, skew) {
    if (spec.note) return spec.note;
    if (spec.due === null) return null;
    const due = spec.due - skew;
    const late = Date.now() / 1000 - due;
    const expected = `Collected every ${f.duration(spec.interval)}; first sample expected by ${f.time(due)}`;
    return late > 10 ? `${expected} (${f.duration(late)} ago): is the worker running?` : `${expected}.`;
  }

  function draw(answer) {
    const skew = answer.now - Date.now() / 1000;
    for (const spec of answer.charts) {
      const entry = drawn.get(spec.id);
      if (!entry) continue;
      // A chart with nothing drawn was read whole: its answer says why.
      merge(entry, spec, answer.since);
      entry.chart.draw(entry.data, {
        labels: entry.labels,
        span: Sentinel.timeSpan(entry.data[0], range, spec.interval || every),
        note: hasPoints(entry) ? null : emptyNote(spec, skew),
      });
    }
  }

  async function refresh() {
    const url = new URL(root.dataset.url, location.href);
    url.searchParams.set("range", range);
    if (database) url.searchParams.set("database", database);
    const lasts = [...drawn.values()].filter(hasPoints).map((entry) => entry.last).filter((last) => last !== null);
    if (lasts.length) {
      url.searchParams.set("after", Math.min(...lasts));
      url.searchParams.set("empty", [...drawn].filter(([, entry]) => !hasPoints(entry)).map(([id]) => id).join(","));
    }
    const answer = await Sentinel.getJSON(url);
    if (!Array.isArray(answer.charts)) throw new Error("signed out; reload the page");
    showStatus(answer.source);
    showSlots(answer.slots);
    draw(answer);
  }

  let range = Sentinel.rangeChoice(document.getElementById("range"), (seconds) => {
    range = seconds;
    reset();
    live.refresh();
  });
  if (databaseSelect) {
    databaseSelect.addEventListener("change", () => {
      database = databaseSelect.value;
      const url = new URL(location.href);
      if (database) url.searchParams.set("database", database); else url.searchParams.delete("database");
      history.replaceState(null, "", url);
      reset();
      live.refresh();
    });
  }

  showStatus(embedded.source);
  showSlots(embedded.slots);
  // Every 10 s as the Sources list, or at the source's own pace when faster.
  const live = Sentinel.live(document.getElementById("source-refresh"), Math.max(2, Math.min(10, every)) * 1000, refresh);

  // -- admins: disable or enable ----------------------------------------------------

  const toggle = document.getElementById("toggle-source");
  if (!toggle) return;
  toggle.addEventListener("click", async () => {
    const enable = toggle.dataset.enabled !== "true";
    const name = root.dataset.name;
    try {
      await Sentinel.postJSON(enable ? root.dataset.enableUrl : root.dataset.disableUrl, {});
      Sentinel.outcome(document.getElementById("outcome"), enable
        ? `Source ${name} enabled: Sentinel collects from it again.`
        : `Source ${name} disabled: kept, but nothing is collected from it until it is enabled again.`);
    } catch (error) {
      Sentinel.outcome(document.getElementById("outcome"), error.message, true);
    }
    reset();
    live.refresh();
  });
})();
