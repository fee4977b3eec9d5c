"""The systemd unit and its drop-ins: valid for systemd, and hardened to an exposure ≤ 2.0."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALLED = "/opt/appliance"  # where README's install puts the checkout
SYSTEMD = ROOT / "systemd"
UNIT = SYSTEMD / "appliance.service"
DROP_INS = sorted((SYSTEMD / "appliance.service.d").glob("*.conf.example"))
MAX_EXPOSURE = 2.0


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(
            "systemd-analyze is missing: install systemd (apt-get install systemd; "
            "scripts/setup test does it as root)"
        )
    return found


def installed(tmp_path: Path, drop_in: Path | None = None) -> Path:
    """The unit as installed, in tmp_path, with this checkout as /opt/appliance (ExecStart,
    which `verify` checks exists, runs its .venv/bin/appliance), and the drop-in, if any, in
    appliance.service.d/ beside it, where systemd-analyze reads it."""
    text = UNIT.read_text().replace(f"{INSTALLED}/", f"{ROOT}/")
    for path in re.findall(rf"{re.escape(str(ROOT))}/[^\s:]+", text):
        assert Path(path).exists(), f"{UNIT} names {path}, which the checkout lacks"
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    if drop_in is not None:
        (tmp_path / "appliance.service.d").mkdir()
        (tmp_path / "appliance.service.d" / drop_in.name.removesuffix(".example")).write_text(
            drop_in.read_text()
        )
    return unit


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), *args], capture_output=True, text=True, check=False, timeout=60
    )


def about_our_files(done: subprocess.CompletedProcess[str], folder: Path) -> list[str]:
    """systemd-analyze's complaints about the unit or a drop-in (it exits 0 on unknown keys)."""
    lines = (done.stdout + done.stderr).splitlines()
    return [line for line in lines if "appliance.service" in line or str(folder) in line]


def exposure(unit: Path) -> float:
    done = analyze("security", "--offline=yes", "--no-pager", str(unit))
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, f"no exposure level from systemd-analyze security: {done.stdout}{done.stderr}"
    return float(found.group(1))


def test_the_drop_ins_are_there() -> None:
    assert {d.name for d in DROP_INS} >= {"intranet.conf.example", "gpu.conf.example"}


@pytest.mark.parametrize("drop_in", [None, *DROP_INS], ids=lambda d: d.name if d else "unit")
def test_the_unit_verifies(tmp_path: Path, drop_in: Path | None) -> None:
    unit = installed(tmp_path, drop_in)
    done = analyze("verify", "--no-pager", str(unit))
    assert done.returncode == 0, done.stdout + done.stderr
    assert about_our_files(done, tmp_path) == []


@pytest.mark.parametrize("drop_in", [None, *DROP_INS], ids=lambda d: d.name if d else "unit")
def test_the_unit_is_hardened(tmp_path: Path, drop_in: Path | None) -> None:
    score = exposure(installed(tmp_path, drop_in))
    assert score <= MAX_EXPOSURE, f"systemd-analyze security: exposure {score} > {MAX_EXPOSURE}"


def test_the_unit_keeps_its_promises() -> None:
    """What the exposure score weighs lightly but the README promises: private state, no
    egress at the OS level, only pseudo-devices."""
    settings = dict(
        line.split("=", 1)
        for line in UNIT.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert settings["UMask"] == "0077"
    assert settings["StateDirectoryMode"] == "0700"
    assert settings["IPAddressDeny"] == "any"
    assert settings["IPAddressAllow"] == "localhost"
    assert settings["DevicePolicy"] == "closed"
    assert settings["PrivateDevices"] == "yes"
    assert settings["CapabilityBoundingSet"] == ""
    assert settings["BindReadOnlyPaths"] == f"{INSTALLED}/systemd/nsswitch.conf:/etc/nsswitch.conf"


def test_the_service_looks_no_name_up() -> None:
    """Its nsswitch.conf has local files only: no dns, resolve, mdns, nis or ldap module."""
    lines = [
        line.split()
        for line in (SYSTEMD / "nsswitch.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {line[0] for line in lines} >= {"hosts:", "passwd:", "group:"}
    assert all(line[1:] == ["files"] for line in lines), lines
