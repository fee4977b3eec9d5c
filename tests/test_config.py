"""Settings: defaults < TOML < environment, and errors that name the setting."""

from pathlib import Path

import pytest

from appliance import config
from appliance.config import Settings, SettingsError, load_settings, reference


def test_defaults_without_file_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    settings = load_settings(None, {})
    assert settings == Settings()
    assert settings.web.port == 8080
    assert settings.web.host == "127.0.0.1"


def test_environment_overrides_toml(tmp_path: Path) -> None:
    toml = tmp_path / "appliance.toml"
    toml.write_text('data_dir = "/srv/a"\n[llm]\nn_ctx = 1024\nmax_tokens = 64\n')
    env = {"APPLIANCE_LLM__N_CTX": "2048", "APPLIANCE_DATA_DIR": "/srv/b", "HOME": "/x"}
    settings = load_settings(toml, env)
    assert settings.llm.n_ctx == 2048
    assert settings.llm.max_tokens == 64
    assert settings.data_dir == "/srv/b"


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().llm.n_ctx = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[llm]\nnctx = 5\n", {}, "unknown setting llm.nctx"),
        ("[lm]\nn_ctx = 5\n", {}, "unknown setting lm"),
        ('[llm]\nn_ctx = "big"\n', {}, "setting llm.n_ctx: Expected `int`"),
        ("[llm]\nn_ctx = 5\n", {}, "setting llm.n_ctx: Expected `int` >= 128"),
        ("", {"APPLIANCE_WEB__PORT": "eighty"}, "setting web.port: Expected `int`"),
        ("", {"APPLIANCE_WEB__PROT": "80"}, "unknown setting web.prot"),
        ("[llm\n", {}, "is not valid TOML"),
    ],
)
def test_bad_settings_name_their_path(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text(toml)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")):
        load_settings(path, env)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", {})


def test_unreadable_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings(tmp_path, {})  # a folder where the file should be


def test_every_setting_is_documented() -> None:
    text = reference()
    for section in ("llm", "web"):
        for field in getattr(Settings(), section).__struct_fields__:
            assert f"| `{field}` |" in text
    documented = Path(__file__).parent.parent / "docs" / "settings.md"
    assert documented.read_text() == text, "run: appliance config reference > docs/settings.md"


def test_reference_has_a_meaning_for_every_row() -> None:
    rows = [line for line in reference().splitlines() if line.startswith("| `")]
    assert rows
    assert all(not line.rstrip().endswith("|  |") for line in rows)
