/* Administration page: confirm, then reload or restart, and show the outcome. */
"use strict";

(() => {
  const dialog = document.getElementById("confirm");
  const outcome = document.getElementById("outcome");
  const stateLine = document.getElementById("instance-state");
  const texts = {
    reload: "Reload PostgreSQL's configuration (pg_reload_conf)? Sessions are not interrupted.",
    restart: "Restart PostgreSQL? Every session is disconnected while it restarts.",
  };

  const confirmAction = (action) => new Promise((resolve) => {
    document.getElementById("confirm-title").textContent = `${action[0].toUpperCase()}${action.slice(1)} PostgreSQL`;
    document.getElementById("confirm-text").textContent = texts[action];
    const finish = (answer) => { dialog.close(); resolve(answer); };
    document.getElementById("confirm-ok").onclick = () => finish(true);
    document.getElementById("confirm-cancel").onclick = () => finish(false);
    dialog.showModal();
  });

  async function refreshState() {
    const state = await Sentinel.getJSON("state");
    stateLine.dataset.up = state.up ? "yes" : "no";
    stateLine.textContent = state.up ? `Running: ${state.version}` : `Not reachable: ${state.reason}`;
  }

  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      if (!await confirmAction(action)) return;
      for (const other of document.querySelectorAll("button[data-action]")) other.setAttribute("aria-busy", "true");
      Sentinel.say(outcome, `${action}: in progress...`);
      try {
        const answer = await Sentinel.postJSON("control", {action});
        if (answer.state === "ok") Sentinel.say(outcome, `${action}: done.`);
        else Sentinel.say(outcome, `${action} failed: ${answer.reason}`, true);
      } catch (error) {
        Sentinel.say(outcome, `${action} failed: ${error.message}`, true);
      } finally {
        for (const other of document.querySelectorAll("button[data-action]")) other.removeAttribute("aria-busy");
        await refreshState().catch(() => {});
      }
    });
  }
})();
