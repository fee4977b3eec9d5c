"""The bundled model installed by set-up is the one models/manifest.toml names."""

import hashlib
import tomllib
from pathlib import Path

MANIFEST = Path(__file__).parents[2] / "models" / "manifest.toml"


def test_bundled_model_matches_its_manifest_hash(model_path: Path) -> None:
    entries = {m["file"]: m for m in tomllib.loads(MANIFEST.read_text())["model"]}
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert entries[model_path.name]["sha256"] == digest
