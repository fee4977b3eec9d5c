"""The README says what the code does: the two set-up commands and every subcommand."""

import re
from pathlib import Path

from appliance.cli import _parser

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_setup_is_exactly_the_two_commands() -> None:
    section = README.split("## Set-up", 1)[1].split("##", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["scripts/serve", "scripts/test"]


def test_every_subcommand_is_in_the_readme() -> None:
    sub = next(a for a in _parser()._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"appliance {name}" in README


def test_every_appliance_variable_in_scripts_and_docs_is_a_setting() -> None:
    """APPLIANCE_* is the settings' namespace: anything else there fails the start."""
    root = Path(__file__).parent.parent
    settings_doc = (root / "docs" / "settings.md").read_text()
    files = [root / "README.md", root / "Containerfile", *root.glob("scripts/**/*"),
             *root.glob("systemd/*")]  # fmt: skip
    names = set()
    for path in files:
        if path.is_file():
            names |= set(re.findall(r"APPLIANCE_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    assert names
    assert {n for n in names if f"`{n}`" not in settings_doc} == set()
