"""The systemd units load, and run Sentinel as a non-root user, hardened."""

import configparser
import subprocess
from pathlib import Path

import pytest

UNITS = sorted((Path(__file__).resolve().parent.parent / "systemd").glob("*.service"))


def read_unit(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_the_unit_runs_hardened_as_the_cluster_owner(unit):
    service = read_unit(unit)["Service"]
    assert service["User"] == "postgres"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "true"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "true"


def test_web_and_worker_units_exist_plain_and_templated():
    assert [unit.name for unit in UNITS] == [
        "sentinel-worker.service",
        "sentinel-worker@.service",
        "sentinel.service",
        "sentinel@.service",
    ]


def test_systemd_accepts_the_units(tmp_path):
    paths = []
    for unit in UNITS:
        name = unit.name.replace("@.", "@main.")
        (tmp_path / name).write_text(unit.read_text())
        paths.append(str(tmp_path / name))
    result = subprocess.run(
        ["systemd-analyze", "verify", *paths], capture_output=True, text=True, check=False
    )
    # The units point at /opt/sentinel, which does not exist on a test machine.
    problems = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and "is not executable" not in line and "/opt/sentinel" not in line
    ]
    assert problems == []
