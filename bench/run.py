"""`make bench`: every benchmark, each beside its baselines, in one run."""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import core  # noqa: E402
from bench.common import Environment, ReferenceAgent  # noqa: E402

SUITES = {"core": core}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suites", nargs="*", default=list(SUITES), help="which benchmarks")
    parser.add_argument("--no-reference", action="store_true", help="skip temBoard agent 7.11")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    environment = Environment()
    agent = ReferenceAgent() if not args.no_reference else ReferenceAgent.__new__(ReferenceAgent)
    if args.no_reference:
        agent.available = False
        agent.env = {}
    try:
        agent.start()
        results = {name: SUITES[name].run(environment, agent) for name in args.suites}
    finally:
        agent.stop()
        environment.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
