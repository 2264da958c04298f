"""What the periodic collectors cost: CPU of the worker's processes (worker,
cron scheduler, RQ scheduler) at the default intervals, measured over a few
minutes of real collection against the bench cluster."""

import sqlite3
import subprocess
import sys
import time

import psutil

from .common import ROOT

DURATION = 180  # seconds: 90 dashboard samples and 3 monitoring runs


def cpu_seconds(process):
    """CPU used so far by a process and all its descendants, reaped or alive."""
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def collected(state_dir):
    """How many dashboard samples and monitoring runs the worker stored."""
    with sqlite3.connect(f"{state_dir}/sentinel.db") as conn:
        return (
            conn.execute("SELECT count(*) FROM dashboard_sample").fetchone()[0],
            conn.execute("SELECT count(*) FROM monitoring_run").fetchone()[0],
        )


def run(environment, agent, duration=DURATION):
    env = environment.env()  # default intervals: dashboard 2 s, monitoring 60 s
    worker = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(10)  # start-up (imports, first runs) is not steady state
        process = psutil.Process(worker.pid)
        started, used_before = time.monotonic(), cpu_seconds(process)
        time.sleep(duration)
        elapsed = time.monotonic() - started
        used = cpu_seconds(process) - used_before
    finally:
        worker.terminate()
        worker.wait(30)
    percent = used / elapsed * 100
    dashboard_samples, monitoring_runs = collected(env["SENTINEL_STATE_DIR"])
    print("\n# Collectors at default intervals (dashboard every 2 s, probes every 60 s)")
    print(f"  kept: {dashboard_samples} dashboard samples, {monitoring_runs} monitoring runs")
    print(
        f"  worker processes used {used:.2f} s of CPU in {elapsed:.0f} s: "
        f"{percent:.2f} % of one core (target < 2 %): {'MET' if percent < 2 else 'MISSED'}"
    )
    return {
        "cpu_seconds": used,
        "elapsed": elapsed,
        "percent_of_one_core": percent,
        "dashboard_samples": dashboard_samples,
        "monitoring_runs": monitoring_runs,
    }
