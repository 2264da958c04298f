/* Maintenance pages: databases (with wraparound), schemas, tables and indexes
 * with size and bloat bars; VACUUM / ANALYZE / REINDEX now or at a chosen time
 * after a confirmation that says the lock taken, the size and who would hold
 * it up; the jobs with their status, output, progress and Cancel. */
"use strict";

(() => {
  const REFRESH_MS = 10000;
  const JOBS_REFRESH_MS = 2000;
  const f = Sentinel.format;
  const esc = Sentinel.escape;
  const section = document.getElementById("maintenance");
  const outcome = document.getElementById("outcome");
  const {level, db, schema, table, url, pageUrl, previewUrl, runUrl, cancelUrl} = section.dataset;
  const mayAct = Boolean(runUrl);
  const pageOf = (names) => `${pageUrl}?${new URLSearchParams(names)}`;
  const dbUrl = (name) => pageOf({db: name});
  const schemaUrl = (name) => pageOf({db, schema: name});
  const tableUrl = (name) => pageOf({db, schema, table: name});

  /* A figure beside a bar of its share of `max` (the largest of the list);
   * a <meter>, as the page may not style elements inline. */
  const bar = (value, max, text, status) => {
    if (value === null || value === undefined) return `<td class="num">${f.UNKNOWN}</td>`;
    const share = max > 0 ? Math.min(1, value / max) : 0;
    const kind = status ? ` class="status-${status}"` : "";
    return `<td class="num bar"><meter${kind} min="0" max="1" value="${share.toFixed(4)}"></meter>`
      + ` ${esc(text)}</td>`;
  };
  const maxOf = (rows, key) => Math.max(0, ...rows.map((row) => row[key] || 0));
  const link = (href, text) => `<a href="${href}">${esc(text)}</a>`;
  const seconds = (value) => value === null || value === undefined ? f.UNKNOWN : f.duration(value);

  function makeTable(id, rowHtml, noun, rowKey) {
    const element = document.getElementById(id);
    return element ? Sentinel.table(element, {rowHtml, noun, rowKey, count: document.getElementById(`${id}-count`)}) : null;
  }

  // -- the four levels of the drill-down -------------------------------------------

  const wrapStatus = (row) => {
    if (row.xid_age >= 0.75 * row.xid_stop_limit) return "critical";
    if (row.xid_age >= row.autovacuum_freeze_max_age) return "warning";
    return "ok";
  };
  let maxima = {};
  const databaseRow = (row) => `<tr data-key="${esc(row.datname)}">
    <td>${link(dbUrl(row.datname), row.datname)}</td>
    ${bar(row.total_bytes, maxima.total_bytes, f.bytes(row.total_bytes))}
    ${bar(row.tables_bloat_bytes, maxima.total_bytes, f.bytes(row.tables_bloat_bytes))}
    ${bar(row.indexes_bloat_bytes, maxima.total_bytes, f.bytes(row.indexes_bloat_bytes))}
    <td class="num">${f.count(row.n_tables)}</td>
    ${bar(row.xid_age, row.xid_stop_limit, f.count(row.xid_age), wrapStatus(row))}
    <td class="num">${seconds(row.seconds_to_forced_vacuum)}</td>
    <td class="num">${seconds(row.seconds_to_shutdown)}</td>
    <td class="num">${f.count(row.mxid_age)}</td></tr>`;
  const schemaRow = (row) => `<tr data-key="${esc(row.name)}">
    <td>${link(schemaUrl(row.name), row.name)}</td>
    ${bar(row.total_bytes, maxima.total_bytes, f.bytes(row.total_bytes))}
    ${bar(row.tables_bloat_bytes, maxima.total_bytes, f.bytes(row.tables_bloat_bytes))}
    ${bar(row.indexes_bloat_bytes, maxima.total_bytes, f.bytes(row.indexes_bloat_bytes))}
    <td class="num">${f.count(row.n_tables)}</td><td class="num">${f.count(row.n_indexes)}</td></tr>`;
  const tableRow = (row) => `<tr data-key="${esc(row.name)}">
    <td>${link(tableUrl(row.name), row.name)}</td>
    ${bar(row.total_bytes, maxima.total_bytes, f.bytes(row.total_bytes))}
    ${bar(row.bloat_bytes, maxima.total_bytes, f.bytes(row.bloat_bytes))}
    ${bar(row.index_bloat_bytes, maxima.total_bytes, f.bytes(row.index_bloat_bytes))}
    <td class="num">${f.count(row.row_estimate)}</td><td class="num">${f.count(row.n_indexes)}</td></tr>`;
  const indexRow = (row) => `<tr data-key="${esc(row.name)}"><td>${esc(row.name)}</td>
    ${mayAct ? `<td class="actions"><button type="button" class="danger outline" data-operation="reindex"
      data-index="${esc(row.name)}">REINDEX</button></td>` : ""}
    ${bar(row.total_bytes, maxima.total_bytes, f.bytes(row.total_bytes))}
    ${bar(row.bloat_bytes, maxima.total_bytes, f.bytes(row.bloat_bytes))}
    <td class="num">${f.count(row.scans)}</td>${Sentinel.longCell(row.def)}</tr>`;

  const STATUSES = {todo: "unknown", doing: "warning", done: "ok", failed: "critical", canceled: "unknown"};
  const targetOf = (job) => job.index ? `${job.dbname} · ${job.schema}.${job.index}`
    : job.table ? `${job.dbname} · ${job.schema}.${job.table}` : `${job.dbname} (whole database)`;
  const progressHtml = (job) => {
    const p = job.progress;
    if (job.status !== "doing") return `<td class="num">${job.status === "done" ? "100 %" : f.UNKNOWN}</td>`;
    if (!p) return `<td><small>starting or waiting for its lock</small></td>`;
    const value = p.total ? `value="${p.done}" max="${p.total}"` : "";
    return `<td title="${esc(p.command)}: ${esc(p.phase)}"><progress ${value}></progress>
      <small>${esc(p.phase)}${p.total ? ` · ${f.count(p.done)} of ${f.count(p.total)} ${esc(p.unit)}` : ""}</small></td>`;
  };
  const jobRow = (job) => `<tr data-key="${job.id}">
    <td>${Sentinel.timeHtml(new Date(job.datetime), f.dateTime(new Date(job.datetime)))}</td>
    <td>${Sentinel.badge(job.status, STATUSES[job.status] || "unknown")}</td>
    ${mayAct ? `<td class="actions">${job.status === "todo" ? `<button type="button" class="secondary outline"
      data-cancel="${job.id}">Cancel</button>` : ""}</td>` : ""}
    <td>${esc(job.operation.toUpperCase())}${job.mode ? ` <small>(${esc(job.mode)})</small>` : ""}</td>
    <td>${esc(targetOf(job))}</td>${progressHtml(job)}<td>${esc(job.requested_by)}</td>
    ${Sentinel.longCell(job.error || job.output || "")}</tr>`;

  const byName = (row) => row.name;
  const tables = {
    instance: makeTable("databases", databaseRow, "database", (row) => row.datname),
    database: makeTable("schemas", schemaRow, "schema", byName),
    schema: makeTable("tables", tableRow, "table", byName),
    table: makeTable("indexes", indexRow, "index", byName),
    jobs: makeTable("jobs", jobRow, "job", (row) => row.id),
  };

  function showTable(answer) {
    const facts = document.getElementById("table-facts");
    const fact = (label, value) => `<li>${label}: <strong>${value}</strong></li>`;
    facts.innerHTML = fact("Size", f.bytes(answer.total_bytes))
      + fact("Estimated bloat", f.bytes(answer.bloat_bytes))
      + fact("Rows", f.count(answer.n_live_tup)) + fact("Dead rows", f.count(answer.n_dead_tup))
      + fact("Last vacuum", esc(answer.last_vacuum || answer.last_autovacuum || "never"))
      + fact("Last analyze", esc(answer.last_analyze || answer.last_autoanalyze || "never"));
    maxima = {total_bytes: maxOf(answer.indexes, "total_bytes")};
    tables.table.render(answer.indexes);
  }

  async function refresh() {
    const answer = await Sentinel.getJSON(url);
    if (level === "instance") {
      const rows = answer.databases.map((row) => ({...row.wraparound, ...row}));
      maxima = {total_bytes: maxOf(rows, "total_bytes")};
      tables.instance.render(rows);
    } else if (level === "database") {
      maxima = {total_bytes: maxOf(answer.schemas, "total_bytes")};
      tables.database.render(answer.schemas);
    } else if (level === "schema") {
      maxima = {total_bytes: maxOf(answer.tables, "total_bytes")};
      tables.schema.render(answer.tables);
    } else if (level === "table") {
      showTable(answer);
    } else {
      const rows = answer.jobs.map((job) => ({...job, target: targetOf(job),
        done_share: job.progress && job.progress.total ? job.progress.done / job.progress.total : null}));
      tables.jobs.render(rows);
    }
  }

  // -- asking for an operation -------------------------------------------------------

  const when = document.getElementById("when");
  const chosenTime = () => {
    if (!when || !when.value) return null;
    const moment = new Date(when.value);  // the browser's time zone
    return Number.isNaN(moment.getTime()) ? null : moment.toISOString().replace(/\.\d{3}Z$/, "Z");
  };
  const chosenMode = () => ["full", "freeze", "analyze"]
    .filter((mode) => document.getElementById(`mode-${mode}`)?.checked).join(",");

  async function ask(operation, index) {
    const target = {operation, db};
    if (level === "table") Object.assign(target, {schema, table});
    if (index) Object.assign(target, {schema, index, table: undefined});
    const mode = operation === "vacuum" ? chosenMode() : "";
    const at = chosenTime();
    const query = new URLSearchParams(Object.entries({...target, mode}).filter(([, v]) => v));
    let seen;
    try {
      seen = await Sentinel.getJSON(`${previewUrl}?${query}`);
    } catch (error) {
      Sentinel.outcome(outcome, `Could not prepare ${operation.toUpperCase()}: ${error.message}`, true);
      return;
    }
    const what = index ? `index ${schema}.${index}` : table ? `table ${schema}.${table}` : `database ${db}`;
    const size = seen.size === null ? "" : ` (${f.bytes(seen.size)})`;
    const blockers = seen.blockers.length
      ? ` Right now ${seen.blockers.length} session(s) hold a conflicting lock: `
        + seen.blockers.map((b) => `backend ${b.pid} (${b.user || "?"}, ${b.state || "?"}`
          + `${b.xact_age === null ? "" : `, in transaction for ${f.duration(b.xact_age)}`})`).join(", ")
        + ": the job waits for them up to its lock_timeout, then fails."
      : " No session holds a conflicting lock right now.";
    const text = `${operation.toUpperCase()}${mode ? ` (${mode.toUpperCase()})` : ""} of ${what}${size}`
      + `, ${at ? `at ${f.dateTime(new Date(at))}` : "now"}. It takes a ${seen.lock}: `
      + `${seen.effect}.${blockers}`;
    const strong = seen.lock === "AccessExclusiveLock" || seen.lock === "ShareLock";
    const confirmed = await Sentinel.confirm({title: `${operation.toUpperCase()} ${what}?`, text,
      action: operation.toUpperCase(), danger: strong});
    if (!confirmed) return;
    const body = {...target};
    if (mode) body.mode = mode;
    if (at) body.datetime = at;
    for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
    try {
      const answer = await Sentinel.postJSON(runUrl, body);
      Sentinel.outcome(outcome, `${operation.toUpperCase()} of ${what} asked (job ${answer.id}); `
        + "its status is on the Jobs page.");
    } catch (error) {
      Sentinel.outcome(outcome, `${operation.toUpperCase()} of ${what} was not asked: ${error.message}`, true);
    }
  }

  section.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-operation], button[data-cancel]");
    if (!button || !mayAct) return;
    if (button.dataset.cancel) {
      const id = button.dataset.cancel;
      const confirmed = await Sentinel.confirm({title: `Cancel job ${id}?`,
        text: `Job ${id} has not started: cancelling it means it will not run.`, action: "Cancel the job"});
      if (!confirmed) return;
      try {
        await Sentinel.postJSON(cancelUrl, {id});
        Sentinel.outcome(outcome, `Job ${id} canceled.`);
      } catch (error) {
        Sentinel.outcome(outcome, `Job ${id} was not canceled: ${error.message}`, true);
      }
      refresh();
      return;
    }
    ask(button.dataset.operation, button.dataset.index);
  });

  Sentinel.live(document.getElementById("maintenance-refresh"),
    level === "jobs" ? JOBS_REFRESH_MS : REFRESH_MS, refresh);
})();
