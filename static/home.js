/* Home: the instance's health at a glance, each figure in its status colour
 * (thresholds: docs/ui.md), refreshed in place. */
"use strict";

(() => {
  const REFRESH_MS = 5000;
  const f = Sentinel.format;
  const section = document.getElementById("health");
  const alert = document.getElementById("health-alert");
  const summary = document.getElementById("health-summary");
  const LABELS = {
    state: "PostgreSQL", connections: "Connections", tps: "Transactions", hit_ratio: "Cache hit ratio",
    longest_query: "Longest query", longest_transaction: "Longest transaction",
    blocked: "Blocked backends", wal_rate: "WAL written", pending_restart: "Pending restart",
    collectors: "Collectors",
  };

  function show(name, status, value, detail, title = "") {
    const tile = document.getElementById(`health-${name}`);
    tile.className = `tile status-${status}`;
    tile.dataset.status = status;
    tile.querySelector(".value").textContent = value;
    tile.querySelector(".detail").innerHTML = detail;
    tile.title = title;
  }

  const plural = (n, one, many = `${one}s`) => `${f.count(n)} ${n === 1 ? one : many}`;

  function collectorsDetail(c) {
    const one = (name, at) => `${name} ${at === null ? "never ran" : Sentinel.timeHtml(at, f.ago(at))}`;
    return `${one("dashboard", c.dashboard)} · ${one("monitoring", c.monitoring)}`;
  }

  function render(h) {
    alert.hidden = h.up;
    if (!h.up) alert.textContent = `PostgreSQL is unavailable${h.reason ? `: ${h.reason}` : ""}`;
    const newest = Math.max(h.collectors.dashboard ?? 0, h.collectors.monitoring ?? 0) || null;
    show("collectors", h.collectors.status, newest ? f.ago(newest) : "never",
      collectorsDetail(h.collectors), "The worker's collectors: when each last ran");
    if (!h.up) {
      show("state", "critical", "Down", Sentinel.escape(h.reason || "not reachable"));
      for (const name of Object.keys(LABELS)) {
        if (name !== "state" && name !== "collectors") show(name, "unknown", f.UNKNOWN, "PostgreSQL is unavailable");
      }
    } else {
      show("state", "ok", "Up", `for ${Sentinel.timeHtml(h.started_at, f.duration(h.at - h.started_at))}`,
        `Started at ${f.dateTime(h.started_at)}`);
      const c = h.connections;
      show("connections", c.status, `${f.count(c.used)} / ${f.count(c.max)}`,
        `${f.percent(c.used * 100 / c.max, 0)} of max_connections`);
      show("tps", h.tps.status, h.tps.value === null ? f.UNKNOWN : `${f.number(h.tps.value, 1)}/s`,
        h.tps.value === null ? "measured at the next refresh" : "commits and rollbacks per second");
      show("hit_ratio", h.hit_ratio.status, f.percent(h.hit_ratio.value, 2), "of blocks read, since the statistics reset");
      const q = h.longest_query;
      show("longest_query", q.status, q.seconds === null ? "none" : f.duration(q.seconds),
        q.seconds === null ? "no query running" : `backend ${q.pid}`);
      const t = h.longest_transaction;
      show("longest_transaction", t.status, t.seconds === null ? "none" : f.duration(t.seconds),
        t.seconds === null ? "no transaction open" : `backend ${t.pid}, ${Sentinel.escape(t.state)}`);
      show("blocked", h.blocked.status, f.count(h.blocked.count),
        h.blocked.count ? `${h.blocked.count === 1 ? "backend waits" : "backends wait"} for a lock` : "no backend waits for a lock");
      const w = h.wal_rate;
      show("wal_rate", w.status, f.rate(w.value),
        w.standby ? "a standby writes no WAL of its own" : w.value === null ? "measured at the next refresh" : "per second");
      const p = h.pending_restart.settings;
      show("pending_restart", h.pending_restart.status, p.length ? plural(p.length, "setting") : "none",
        p.length ? Sentinel.escape(p.join(", ")) : "no setting waits for a restart");
    }
    const troubles = [...section.querySelectorAll(".tile")]
      .filter((tile) => ["warning", "critical"].includes(tile.dataset.status))
      .map((tile) => `${Sentinel.badge(tile.dataset.status, tile.dataset.status)} ${Sentinel.escape(LABELS[tile.id.replace("health-", "")])}`);
    summary.innerHTML = troubles.length ? `Needs a look: ${troubles.join(" · ")}`
      : Sentinel.badge("All clear", "ok");
  }

  render(JSON.parse(document.getElementById("health-data").textContent));
  Sentinel.live(document.getElementById("home-refresh"), REFRESH_MS, async () => {
    render(await Sentinel.getJSON(section.dataset.url));
    Sentinel.formatTimes();  // the notifications' ages move on too
  }, {immediate: false});
})();
