"""The backup's systemd units: valid for systemd, hardened like the server's, and backing up
the data dir the server serves, daily, keeping a bounded number."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_service_unit import (
    INSTALLED,
    MAX_EXPOSURE,
    ROOT,
    SYSTEMD,
    UNIT,
    about_our_files,
    analyze,
    exposure,
)

SERVICE = SYSTEMD / "appliance-backup.service"
TIMER = SYSTEMD / "appliance-backup.timer"


def settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def installed(tmp_path: Path) -> tuple[Path, Path]:
    """Both units as installed, beside each other, with this checkout as /opt/appliance."""
    text = SERVICE.read_text().replace(f"{INSTALLED}/", f"{ROOT}/")
    for path in re.findall(rf"{re.escape(str(ROOT))}/[^\s:]+", text):
        assert Path(path).exists(), f"{SERVICE} names {path}, which the checkout lacks"
    (tmp_path / SERVICE.name).write_text(text)
    (tmp_path / TIMER.name).write_text(TIMER.read_text())
    return tmp_path / SERVICE.name, tmp_path / TIMER.name


def test_the_units_verify(tmp_path: Path) -> None:
    service, timer = installed(tmp_path)
    done = analyze("verify", "--no-pager", str(service), str(timer))
    assert done.returncode == 0, done.stdout + done.stderr
    assert about_our_files(done, tmp_path) == []


def test_the_backup_is_hardened(tmp_path: Path) -> None:
    score = exposure(installed(tmp_path)[0])
    assert score <= MAX_EXPOSURE, f"systemd-analyze security: exposure {score} > {MAX_EXPOSURE}"


def test_it_backs_up_the_servers_data_dir_daily_keeping_a_few() -> None:
    backup, server, timer = settings(SERVICE), settings(UNIT), settings(TIMER)
    data_dir = [e for e in server["Environment"] if e.startswith("APPLIANCE_DATA_DIR=")]
    assert data_dir
    assert data_dir == [e for e in backup["Environment"] if e.startswith("APPLIANCE_DATA_DIR=")]
    assert backup["User"] == server["User"]
    [command] = backup["ExecStart"]
    keep = re.fullmatch(rf"{INSTALLED}/\.venv/bin/appliance backup --keep (\d+) (\S+)", command)
    assert keep is not None, command
    assert 1 <= int(keep.group(1)) <= 31
    # the backups' folder is one systemd makes, private, and writable under ProtectSystem
    assert keep.group(2) == "/var/lib/appliance-backups"
    assert "appliance-backups" in backup["StateDirectory"][0].split()
    assert backup["StateDirectoryMode"] == ["0700"]
    assert backup["UMask"] == ["0077"]
    assert backup["Type"] == ["oneshot"]
    assert timer["OnCalendar"] == ["daily"]
    assert timer["Persistent"] == ["true"]  # a day the box was off is made up at boot
    assert TIMER.stem == SERVICE.stem  # the timer starts the service of its name
