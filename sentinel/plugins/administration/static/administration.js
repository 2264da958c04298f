/* Administration page: the instance's state; reload or restart after a
 * confirmation that says what it will do, and the outcome with its time. */
"use strict";

(() => {
  const REFRESH_MS = 10000;
  const f = Sentinel.format;
  const section = document.getElementById("administration");
  const outcome = document.getElementById("outcome");
  const stateLine = document.getElementById("instance-state");
  const buttons = () => document.querySelectorAll("button[data-action]");
  let current = JSON.parse(document.getElementById("instance-data").textContent);

  const settingsList = (names) => names.map((name) => `<code>${Sentinel.escape(name)}</code>`).join(", ");

  function render(state) {
    current = state;
    stateLine.dataset.up = state.up ? "yes" : "no";
    stateLine.innerHTML = state.up
      ? `${Sentinel.badge("Running", "ok")} ${Sentinel.escape(state.version)}`
      : `${Sentinel.badge("Not reachable", "critical")} ${Sentinel.escape(state.reason)}`;
    document.getElementById("uptime").innerHTML = state.up
      ? Sentinel.timeHtml(state.started_at, f.duration(state.at - state.started_at)) : f.UNKNOWN;
    document.getElementById("connections").textContent = f.count(state.connections);
    const pending = state.pending_restart;
    document.getElementById("pending-restart").innerHTML = pending.length
      ? `${Sentinel.badge("Pending restart", "warning")} ${pending.length === 1 ? "This setting takes" : "These settings take"}
         effect at the next restart: ${settingsList(pending)}.`
      : (state.up ? "No setting waits for a restart." : "");
  }

  const refreshState = async () => render(await Sentinel.getJSON(section.dataset.stateUrl));

  /* What each action will do, said before it is done. */
  function question(action) {
    const where = section.dataset.instance;
    if (action === "reload") {
      return {title: "Reload the configuration?", action: "Reload",
        text: `PostgreSQL on ${where} reads its configuration files again; sessions carry on.`
          + (current.pending_restart.length ? ` ${current.pending_restart.join(", ")} still need a restart.` : "")};
    }
    const connected = current.connections === null ? ""
      : ` (${f.count(current.connections)} connected now)`;
    const uptime = current.up ? ` It has been up for ${f.duration(current.at - current.started_at)}.` : "";
    return {title: "Restart PostgreSQL?", action: "Restart PostgreSQL", danger: true,
      text: `PostgreSQL on ${where} stops and starts again: every session is disconnected${connected}`
        + ` and open transactions are rolled back; it refuses connections until it has started.${uptime}`};
  }

  function result(action, answer, seconds) {
    const took = `in ${seconds < 10 ? seconds.toFixed(1) + " s" : f.duration(seconds)}`;
    if (answer.state !== "ok") return [`${action === "reload" ? "Reload" : "Restart"} failed ${took}: ${answer.reason}`, true];
    if (action === "reload") {
      const pending = current.pending_restart;
      return [`Configuration reloaded ${took}.`
        + (pending.length ? ` Still waiting for a restart: ${pending.join(", ")}.` : ""), false];
    }
    return [`PostgreSQL restarted ${took}; up again since ${f.time(current.started_at)}`
      + `${current.pending_restart.length ? "" : ", no setting pending"}.`, false];
  }

  for (const button of buttons()) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      if (!await Sentinel.confirm(question(action))) return;
      for (const other of buttons()) { other.setAttribute("aria-busy", "true"); other.disabled = true; }
      Sentinel.say(outcome, `${action === "reload" ? "Reloading" : "Restarting"}...`);
      const started = performance.now();
      let answer;
      try {
        answer = await Sentinel.postJSON(section.dataset.controlUrl, {action});
      } catch (error) {
        answer = {state: "ko", reason: error.message};
      }
      const seconds = (performance.now() - started) / 1000;
      await refreshState().catch(() => {});
      Sentinel.outcome(outcome, ...result(action, answer, seconds));
      for (const other of buttons()) {
        other.removeAttribute("aria-busy");
        other.disabled = "unavailable" in other.dataset;  // restart without SENTINEL_PG_CTL
      }
    });
  }

  render(current);
  Sentinel.live(document.getElementById("administration-refresh"), REFRESH_MS, refreshState, {immediate: false});
})();
