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
