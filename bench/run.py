"""`make bench`: every benchmark, each beside its baselines, in one run.

A suite is a module bench/<name>.py with run(environment, agent) -> figures.
"""

import argparse
import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Environment, ReferenceAgent  # noqa: E402

SUITES = [
    "core",
    "activity",
    "dashboard",
    "monitoring",
    "administration",
    "collectors",
    "pgconf",
    "statements",
    "maintenance",
    "pool",
    "pool_collect",
    "pool_metrics",
]


def available(name):
    return (Path(__file__).parent / f"{name}.py").exists()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suites", nargs="*", help=f"which benchmarks (default: {SUITES})")
    parser.add_argument("--no-reference", action="store_true", help="skip temBoard agent 7.11")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    names = args.suites or [name for name in SUITES if available(name)]

    environment = Environment()
    agent = ReferenceAgent(enabled=not args.no_reference)
    try:
        agent.start()
        results = {}
        for name in names:
            results[name] = importlib.import_module(f"bench.{name}").run(environment, agent)
    finally:
        agent.stop()
        environment.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
