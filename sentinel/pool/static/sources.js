/* Sources page: the pool's sources and how their last collection went (the
 * status word and colour the server gives), each name a link to the
 * source's own page, refreshed every 10 s; a tag filter (kept in the URL, ?tag=env%3Dprod, and
 * set by clicking a tag); admins add and edit sources in a dialog with a
 * connection test, each refusal shown beside its field, and disable, enable
 * and delete them, the deletion after a confirmation. */
"use strict";

(() => {
  const f = Sentinel.format;
  const esc = Sentinel.escape;
  const section = document.getElementById("pool");
  const admin = Boolean(section.dataset.createUrl);
  const anyId = section.dataset.anyId;
  const urlOf = (template, id) => template.replace(anyId, encodeURIComponent(id));
  const outcome = document.getElementById("outcome");
  const count = document.getElementById("sources-count");
  const tagSelect = document.getElementById("tag-filter");
  const tableElement = document.getElementById("sources");
  let sources = [];
  let tag = new URLSearchParams(window.location.search).get("tag") || "";

  /* POST `body` as JSON; a refusal throws an Error carrying the server's
   * message and the form field at fault (`field`, or null). */
  async function send(url, body = {}) {
    const answer = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content,
      },
      body: JSON.stringify(body),
    });
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      const error = new Error(data.error || `${answer.status} ${answer.statusText}`);
      error.field = data.field || null;
      throw error;
    }
    return data;
  }

  // -- the list ----------------------------------------------------------------

  const metrics = (n) => `${n} metric${n === 1 ? "" : "s"}`;

  function collects(source) {
    if (source.preset) return source.preset;
    if (source.custom_metrics) return `custom intervals (${metrics(source.custom_metrics)})`;
    return "nothing chosen";
  }

  /* A source with what the table sorts and filters on. */
  function listed(source) {
    const tags = Object.entries(source.tags).map(([name, value]) => `${name}=${value}`);
    return {
      ...source,
      tagList: tags,
      tags_text: tags.join(" "),
      address: `${source.user}@${source.host}:${source.port}/${source.dbname}`,
      collects: collects(source),
    };
  }

  function actions(source) {
    const name = esc(source.name);
    const toggle = source.enabled ? "Disable" : "Enable";
    return `<td class="actions">
      <button type="button" class="secondary outline" data-action="edit" aria-label="Edit ${name}">Edit</button>
      <button type="button" class="secondary outline" data-action="${toggle.toLowerCase()}"
        aria-label="${toggle} ${name}">${toggle}</button>
      <button type="button" class="danger outline" data-action="delete" aria-label="Delete ${name}">Delete</button>
    </td>`;
  }

  function rowHtml(source) {
    const error = source.status !== "disabled" && source.last_error
      ? `<small class="last-error">${esc(source.last_error)}</small>` : "";
    const tags = source.tagList.map((t) => `<button type="button" class="tag secondary outline"
      data-tag="${esc(t)}" aria-pressed="${t === tag}" title="Show only the sources tagged ${esc(t)}">${esc(t)}</button>`);
    const collected = source.last_collected_at === null ? f.UNKNOWN
      : Sentinel.timeHtml(source.last_collected_at, f.ago(source.last_collected_at));
    return `<tr data-key="${esc(source.id)}">
      <td class="name"><a href="${esc(urlOf(section.dataset.sourceUrl, source.id))}"
        title="Status, slots and charts of ${esc(source.name)}"><code>${esc(source.name)}</code></a></td>
      <td><code>${esc(source.address)}</code> <small>${esc(source.sslmode)}</small></td>
      <td>${esc(source.kind)}</td>
      <td>${esc(source.group)}</td>
      <td>${tags.join("") || "<small>none</small>"}</td>
      <td>${esc(source.collects)}</td>
      <td>${Sentinel.badge(source.status, source.status_level)}${error}</td>
      <td class="num">${collected}</td>
      ${admin ? actions(source) : ""}
    </tr>`;
  }
  const table = Sentinel.table(tableElement, {rowHtml, rowKey: (source) => source.id, noun: "source"});

  function fillTags() {
    const tags = [...new Set(sources.flatMap((source) => source.tagList))].sort();
    if (tag && !tags.includes(tag)) tags.push(tag);
    tagSelect.innerHTML = tagSelect.options[0].outerHTML
      + tags.map((t) => `<option>${esc(t)}</option>`).join("");
    tagSelect.value = tag;
  }

  /* Draw the list: the tag filter first, then the table's own filters. */
  function show() {
    fillTags();
    const tagged = tag ? sources.filter((source) => source.tagList.includes(tag)) : sources;
    table.render(tagged);
    const body = tableElement.tBodies[0];
    const shown = body.querySelectorAll("tr:not(.empty)").length;
    count.textContent = shown === sources.length ? `(${sources.length})` : `(${shown} of ${sources.length})`;
    if (!tagged.length && sources.length) {
      body.querySelector("tr.empty td").textContent =
        `No source has the tag ${tag} (${sources.length} hidden).`;
    }
  }

  function setTag(value) {
    tag = value;
    const url = new URL(window.location.href);
    if (tag) url.searchParams.set("tag", tag); else url.searchParams.delete("tag");
    window.history.replaceState(null, "", url);
    show();
  }

  async function load() {
    const data = await Sentinel.getJSON(section.dataset.url);
    sources = data.sources.map(listed);
    show();
  }

  tagSelect.addEventListener("change", () => setTag(tagSelect.value));
  sources = JSON.parse(document.getElementById("sources-data").textContent).map(listed);
  show();
  const live = Sentinel.live(document.getElementById("sources-refresh"), 10000, load, {immediate: false});

  // A click on a tag shows only the sources with it; a second click, all.
  tableElement.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-tag]");
    if (button) setTag(button.dataset.tag === tag ? "" : button.dataset.tag);
  });
  if (!admin) return;

  // -- the form ------------------------------------------------------------------

  const dialog = document.getElementById("source-dialog");
  const form = document.getElementById("source-form");
  const formOutcome = document.getElementById("form-outcome");
  const title = document.getElementById("source-form-title");
  const passwordHelp = document.getElementById("source-password-help");
  const newPasswordHelp = passwordHelp.textContent;
  const presetSelect = form.elements.namedItem("preset");
  const noPreset = presetSelect.options[0];
  const CONNECTION = ["host", "port", "dbname", "user", "password", "sslmode"];
  const FIELDS = [...CONNECTION, "name", "tags", "group", "kind", "preset"];
  // Store fields the form shows elsewhere: custom intervals go with the preset.
  const SHOWN_AT = {metrics: "preset"};
  const NEW = {name: "", kind: "postgres", host: "", port: "5432", dbname: "postgres", user: "",
               password: "", sslmode: "prefer", preset: presetSelect.dataset.default, group: "default",
               tags: "", enabled: true};
  let editing = null;  // the source in the form, or null for a new one

  const element = (field) => form.elements.namedItem(field);

  function clearErrors() {
    for (const small of form.querySelectorAll(".field-error")) {
      small.hidden = true;
      small.textContent = "";
    }
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    formOutcome.textContent = "";
    formOutcome.className = "outcome";
  }

  /* A refusal beside its field when the form has it, else under the form. */
  function showError(error, prefix = "") {
    const field = SHOWN_AT[error.field] || error.field;
    const place = field && document.getElementById(`source-${field}-error`);
    if (!place) {
      Sentinel.outcome(formOutcome, `${prefix}${error.message}`, true);
      return;
    }
    place.textContent = error.message;
    place.hidden = false;
    element(field).setAttribute("aria-invalid", "true");
    element(field).focus();
  }

  function fill(values) {
    for (const field of FIELDS) element(field).value = values[field] ?? "";
    element("enabled").checked = values.enabled;
  }

  function values() {
    const body = {};
    for (const field of FIELDS) body[field] = element(field).value;
    body.enabled = element("enabled").checked;
    return body;
  }

  function openNew() {
    editing = null;
    clearErrors();
    title.textContent = "Add a source";
    noPreset.textContent = noPreset.dataset.none;
    passwordHelp.textContent = newPasswordHelp;
    fill(NEW);
    dialog.showModal();
    element("name").focus();
  }

  async function openEdit(id) {
    let source;
    try {
      source = (await Sentinel.getJSON(urlOf(section.dataset.sourceUrl, id))).source;
    } catch (error) {
      Sentinel.outcome(outcome, error.message, true);
      return;
    }
    editing = source;
    clearErrors();
    title.textContent = `Edit source ${source.name}`;
    noPreset.textContent = source.custom_metrics
      ? `${noPreset.dataset.custom} (${metrics(source.custom_metrics)})` : noPreset.dataset.none;
    passwordHelp.textContent = source.password
      ? `Stored: ${source.password} (obfuscated). Leave it as it is to keep it; empty: none.`
      : "None stored: libpq looks in .pgpass. Type one to store it, encrypted.";
    fill({...source, port: String(source.port), tags: source.tags_text, preset: source.preset || ""});
    dialog.showModal();
    element("name").focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const adding = editing === null;
    try {
      const url = adding ? section.dataset.createUrl : urlOf(section.dataset.updateUrl, editing.id);
      const saved = (await send(url, values())).source;
      dialog.close();
      Sentinel.outcome(outcome, adding ? `Source ${saved.name} added.` : `Source ${saved.name} saved.`);
      live.refresh();
    } catch (error) {
      showError(error);
    }
  });

  const testButton = document.getElementById("test-connection");
  testButton.addEventListener("click", async () => {
    clearErrors();
    const body = {};
    for (const field of CONNECTION) body[field] = element(field).value;
    if (editing) body.id = editing.id;
    testButton.setAttribute("aria-busy", "true");
    Sentinel.outcome(formOutcome, "Testing the connection...");
    try {
      Sentinel.outcome(formOutcome, (await send(section.dataset.testUrl, body)).message);
    } catch (error) {
      showError(error, "Connection failed: ");
    } finally {
      testButton.removeAttribute("aria-busy");
    }
  });

  document.getElementById("cancel-source").addEventListener("click", () => dialog.close());
  document.getElementById("add-source").addEventListener("click", openNew);

  async function setEnabled(source, enabled) {
    const url = enabled ? section.dataset.enableUrl : section.dataset.disableUrl;
    try {
      await send(urlOf(url, source.id));
      Sentinel.outcome(outcome, enabled
        ? `Source ${source.name} enabled: Sentinel collects from it again.`
        : `Source ${source.name} disabled: kept, but nothing is collected from it until it is enabled again.`);
    } catch (error) {
      Sentinel.outcome(outcome, error.message, true);
    }
    live.refresh();
  }

  async function remove(source) {
    const confirmed = await Sentinel.confirm({
      title: `Delete source ${source.name}?`,
      text: `Delete source ${source.name} (${source.address}): Sentinel stops monitoring it and`
        + " forgets its settings and its password, in every API (Datasentinel, pgwatch, Sequin)."
        + " Nothing changes on the instance itself.",
      action: "Delete",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await send(urlOf(section.dataset.deleteUrl, source.id));
      Sentinel.outcome(outcome, `Source ${source.name} deleted.`);
    } catch (error) {
      Sentinel.outcome(outcome, error.message, true);
    }
    live.refresh();
  }

  tableElement.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const source = sources.find((s) => s.id === button.closest("tr").dataset.key);
    if (!source) return;
    const action = button.dataset.action;
    if (action === "edit") openEdit(source.id);
    else if (action === "delete") remove(source);
    else setEnabled(source, action === "enable");
  });
})();
