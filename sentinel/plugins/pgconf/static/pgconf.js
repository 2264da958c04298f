/* Configuration page: the settings by category, searchable; admins edit a
 * value in place (the server checks it and says why it refuses); banners for
 * settings waiting for a restart and for broken lines of the configuration
 * files; the history of changes, each revertible. */
"use strict";

(() => {
  const f = Sentinel.format;
  const esc = Sentinel.escape;
  const section = document.getElementById("pgconf");
  const changeUrl = section.dataset.changeUrl;
  const revertUrl = section.dataset.revertUrl;
  const admin = Boolean(changeUrl);
  const outcome = document.getElementById("outcome");
  const status = document.getElementById("pgconf-status");
  // The last word of the server on a setting, shown beside it until the next one.
  const messages = new Map();
  let data = null;

  const MEMORY = {B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4};
  const TIME = {us: 0.001, ms: 1, s: 1000, min: 60000, h: 3600000, d: 86400000};

  /* A number of the setting's unit ("8kB", "ms") as Sentinel.format shows it. */
  function amount(text, unit) {
    if (text === null || text === undefined) return f.UNKNOWN;
    const value = Number(text);
    const match = /^(\d*)(\w+)$/.exec(unit || "");
    if (!match || value < 0) return f.count(value) === f.UNKNOWN ? text : String(value);
    const count = Number(match[1] || 1);
    if (match[2] in MEMORY) return f.bytes(value * count * MEMORY[match[2]]);
    if (match[2] in TIME) {
      const ms = value * count * TIME[match[2]];
      return ms < 1000 ? `${ms} ms` : f.duration(ms / 1000);
    }
    return String(value);
  }

  const enumValues = (text) => text ? text.slice(1, -1).split(",").map((v) => v.replace(/^"|"$/g, "")) : [];

  function allowed(row) {
    if (row.vartype === "bool") return "on, off";
    if (row.vartype === "enum") return enumValues(row.enumvals).join(", ");
    if (row.vartype === "integer" || row.vartype === "real") {
      const unit = row.unit ? ` (unit ${row.unit})` : "";
      return `${amount(row.min_val, row.unit)} to ${amount(row.max_val, row.unit)}${unit}`;
    }
    return "text";
  }

  function where(row) {
    if (row.sourcefile) {
      const file = row.sourcefile.split("/").pop();
      return `${file}:${row.sourceline}`;
    }
    return row.source || f.UNKNOWN;
  }

  /* {name: value} of the lines written but waiting for a restart. */
  function pendingValues(files) {
    const pending = {};
    for (const line of files.lines) {
      if (line.name && !line.applied && !line.broken) pending[line.name.toLowerCase()] = line.setting;
    }
    return pending;
  }

  function editor(row) {
    const name = esc(row.name);
    let field;
    if (row.vartype === "bool" || row.vartype === "enum") {
      const options = row.vartype === "bool" ? ["on", "off"] : enumValues(row.enumvals);
      field = `<select name="value" aria-label="New value of ${name}">${options.map((v) =>
        `<option${v === row.setting ? " selected" : ""}>${esc(v)}</option>`).join("")}</select>`;
    } else {
      field = `<input name="value" value="${esc(row.setting_raw)}" aria-label="New value of ${name}"
        placeholder="empty: reset" autocomplete="off" spellcheck="false">`;
    }
    return `<form class="edit" data-name="${name}">${field}<button type="submit" class="secondary">Save</button></form>`;
  }

  function message(name) {
    const said = messages.get(name);
    return `<small class="setting-message${said ? (said.error ? " error" : " ok") : ""}"
      ${said && said.error ? 'role="alert"' : ""}>${said ? esc(said.text) : ""}</small>`;
  }

  function settingRow(row) {
    const pending = row.pending_restart
      ? `<small>${Sentinel.badge("pending restart", "warning")} ${row.pending === undefined ? ""
        : `<code>${esc(row.pending)}</code> at the next restart`}</small>` : "";
    const unit = row.unit ? ` title="unit: ${esc(row.unit)}"` : "";
    const fixed = row.context === "internal" ? "<small>fixed for this server</small>"
      : row.context === "postmaster" ? "<small>needs a restart</small>" : "";
    return `<tr data-key="${esc(row.name)}">
      <td>${esc(row.category)}</td>
      <td class="setting"><code>${esc(row.name)}</code><small>${esc(row.desc)}</small></td>
      <td class="value"><code${unit}>${row.setting_raw === "" ? "<em>empty</em>" : esc(row.setting_raw)}</code>
        ${pending}${fixed}${admin && row.context !== "internal" ? editor(row) : ""}${message(row.name)}</td>
      <td>${esc(row.allowed)}</td>
      <td title="${esc(row.sourcefile ? `${row.sourcefile}:${row.sourceline}` : row.source)}">${esc(row.where)}</td>
    </tr>`;
  }

  const STATES = {applied: ["applied", "ok"], pending_restart: ["pending restart", "warning"]};

  function historyRow(change) {
    const [text, level] = STATES[change.state] || [change.state, "unknown"];
    const shown = (value) => value === "" ? "<em>default (reset)</em>" : `<code>${esc(value ?? f.UNKNOWN)}</code>`;
    return `<tr data-key="${change.id}">
      <td class="num">${Sentinel.timeHtml(change.at, f.ago(change.at))}</td>
      <td>${change.outside ? "<em>outside Sentinel</em>" : esc(change.username)}</td>
      <td><code>${esc(change.name)}</code></td>
      <td>${shown(change.previous)}</td>
      <td>${shown(change.value)}</td>
      <td>${Sentinel.badge(text, level)}</td>
      ${admin ? `<td><button type="button" class="secondary outline" data-revert="${change.id}">Revert</button></td>` : ""}
    </tr>`;
  }

  const settingsTable = Sentinel.table(document.getElementById("settings"), {
    rowHtml: settingRow, rowKey: (row) => row.name, noun: "setting",
    count: document.getElementById("settings-count"),
  });
  const historyTable = Sentinel.table(document.getElementById("history"), {
    rowHtml: historyRow, rowKey: (row) => row.id, noun: "change",
    count: document.getElementById("history-count"),
  });

  function banners() {
    const restart = document.getElementById("restart-banner");
    const waiting = data.settings.filter((row) => row.pending_restart);
    restart.hidden = !waiting.length;
    restart.innerHTML = waiting.length
      ? `${Sentinel.badge("Restart pending", "warning")} ${waiting.length === 1 ? "This setting takes" : "These settings take"}
         effect at the next restart of PostgreSQL: ${waiting.map((row) => `<code>${esc(row.name)}</code>`).join(", ")}.
         <a href="${esc(section.dataset.administrationUrl)}">Administration</a> restarts it.` : "";

    const errors = document.getElementById("file-errors");
    const broken = data.files.lines.filter((line) => line.broken);
    errors.hidden = !broken.length;
    errors.innerHTML = broken.length
      ? `<strong>The configuration files have errors:</strong> PostgreSQL ignores
         ${broken.some((line) => line.error === "syntax error") ? "every change of a file with a syntax error" : "these lines"}
         when it reloads.<ul>${broken.map((line) => `<li><code>${esc(line.file)}:${esc(line.line)}</code>
         ${line.name ? `<code>${esc(line.name)} = '${esc(line.setting)}'</code>` : ""}:
         ${esc(line.error)}${line.reason ? ` (${esc(line.reason)})` : ""}</li>`).join("")}</ul>` : "";
  }

  async function load() {
    data = await Sentinel.getJSON(section.dataset.url);
    const pending = pendingValues(data.files);
    const rows = data.settings.map((row) => ({
      ...row, allowed: allowed(row), where: where(row), pending: pending[row.name.toLowerCase()],
    }));
    settingsTable.render(rows);
    historyTable.render(data.history.map((change) => ({
      ...change, who: change.outside ? "outside Sentinel" : change.username,
    })));
    banners();
    Sentinel.say(status, `Read at ${f.time(new Date())}.` + (data.files.readable ? ""
      : " Sentinel's role may not read pg_file_settings: errors in the files cannot be shown."));
  }

  function said(answer) {
    if (!answer.settings.length) return "No change: it already has this value.";
    return answer.settings.map((change) => `${change.name}: ${change.previous_setting === "" ? "empty"
      : change.previous_setting} → ${change.setting === "" ? "default (reset)" : change.setting}`
      + (change.restart ? ", at the next restart" : ", in effect now")).join("; ") + ".";
  }

  document.getElementById("settings").addEventListener("submit", async (event) => {
    const form = event.target.closest("form.edit");
    if (!form || !admin) return;
    event.preventDefault();
    const name = form.dataset.name;
    const value = form.elements.value.value;
    const button = form.querySelector("button");
    button.setAttribute("aria-busy", "true");
    button.disabled = true;
    try {
      const answer = await Sentinel.postJSON(changeUrl, {settings: [{name, setting: value}]});
      messages.set(name, {text: `Saved. ${said(answer)}`, error: false});
      Sentinel.outcome(outcome, said(answer));
      await load();
    } catch (error) {
      messages.set(name, {text: error.message, error: true});
      const place = form.closest("td").querySelector(".setting-message");
      place.outerHTML = message(name);
      button.removeAttribute("aria-busy");
      button.disabled = false;
    }
  });

  document.getElementById("history").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-revert]");
    if (!button || !admin) return;
    const change = data.history.find((item) => String(item.id) === button.dataset.revert);
    const back = change.previous === "" ? "its default" : change.previous;
    const ok = await Sentinel.confirm({
      title: `Revert ${change.name}?`, action: "Revert",
      text: `${change.name} goes back from ${change.value === "" ? "its default" : change.value} to ${back},`
        + " written with ALTER SYSTEM, then the configuration is reloaded.",
    });
    if (!ok) return;
    try {
      const answer = await Sentinel.postJSON(revertUrl.replace("/0/", `/${change.id}/`), {});
      Sentinel.outcome(outcome, `Reverted. ${said(answer)}`);
      await load();
    } catch (error) {
      Sentinel.outcome(outcome, `Could not revert ${change.name}: ${error.message}`, true);
    }
  });

  load().catch((error) => Sentinel.say(status, `Could not read the settings: ${error.message}`, true));
})();
