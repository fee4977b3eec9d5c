"""Doctor checks of the served model: its file, its hash, its chat template, the memory it needs."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

from appliance.config import LlmSettings, Settings
from appliance.errors import ModelError
from appliance.llm.build import Build
from appliance.llm.gguf import Header, read_header
from appliance.llm.models import resolve_model
from appliance.ops.doctor import Check, fail, guarded, ok, size, warn
from appliance.ops.doctor.host import Gpu, nvidia_gpus

MANIFEST = "manifest.toml"  # in llm.models_dir
KV_BYTES = 2  # llama.cpp's KV cache holds f16 keys and values


def checks(settings: Settings, build: Build | None) -> list[Check]:
    """The model line; then, for a readable model, its hash, template and memory."""
    try:
        path = resolve_model(settings.llm)
    except ModelError as exc:
        return [_unusable(settings.llm, exc)]
    try:
        header = read_header(path)
    except ModelError as exc:
        return [_unusable(settings.llm, exc)]
    except OSError as exc:
        action = "make it readable by the user that runs the appliance"
        return [fail("model", f"model file {path} cannot be read: {exc.strerror}", action)]
    return [
        ok("model", _described(header)),
        guarded("model-hash", lambda: model_hash(path, Path(settings.llm.models_dir) / MANIFEST)),
        chat_template(header, settings.llm),
        guarded("memory", lambda: memory(header, settings.llm, build)),
    ]


def _unusable(llm: LlmSettings, exc: ModelError) -> Check:
    if "does not exist" in str(exc) or "not installed" in str(exc):
        action = (
            "set llm.model to a GGUF file that exists (`appliance models` lists those on offer), "
            "or leave it empty for the bundled model (scripts/setup installs it)"
        )
    else:
        action = (
            "replace the file with a whole GGUF model (copy it again; convert other formats "
            "with llama.cpp's convert_hf_to_gguf.py), or set llm.model to another one"
        )
    return fail("model", f"{exc} (llm.model = {llm.model!r})", action)


def _described(header: Header) -> str:
    info = header.info
    billions = info.parameters >= 1e9
    params = f"{info.parameters / 1e9:.1f}B" if billions else f"{info.parameters / 1e6:.0f}M"
    return (
        f"{info.path}: GGUF v{header.version}, {info.architecture} {info.quantization}, "
        f"{params} parameters, context {info.context_length}, {size(info.size_bytes)}"
    )


def model_hash(path: Path, manifest: Path) -> Check:
    """The file's size and sha256 against its entry in the manifest, when it has one."""
    if not manifest.is_file():
        return ok("model-hash", f"not checked: no manifest at {manifest}")
    try:
        entries = {str(m["file"]): m for m in tomllib.loads(manifest.read_text())["model"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        action = f"fix {manifest}: [[model]] tables with file, sha256 and size"
        return warn("model-hash", f"{manifest} cannot be read: {exc}", action)
    entry = entries.get(path.name)
    if entry is None:
        return ok("model-hash", f"not checked: {path.name} is not listed in {manifest}")
    again = (
        f"the file is damaged or another version: copy {path.name} again (scripts/setup "
        "reinstalls the bundled one)"
    )
    actual = path.stat().st_size
    if "size" in entry and int(entry["size"]) != actual:
        detail = f"{path} has {actual} bytes, {manifest} says {entry['size']}"
        return fail("model-hash", detail, again)
    digest = _sha256(path)
    if digest != str(entry.get("sha256", "")).lower():
        detail = f"{path}: sha256 {digest}, {manifest} says {entry.get('sha256')}"
        return fail("model-hash", detail, again)
    what = "sha256 and size match" if "size" in entry else "sha256 matches"
    return ok("model-hash", f"{what} {manifest} ({digest[:16]}…)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def chat_template(header: Header, llm: LlmSettings) -> Check:
    if llm.chat_template:
        return ok("chat-template", "llm.chat_template (the one in the GGUF is not used)")
    if header.info.has_chat_template:
        return ok("chat-template", "in the GGUF metadata (tokenizer.chat_template)")
    detail = f"{header.info.path} has no chat template (a base model, not a chat model?)"
    return fail("chat-template", detail, "use an instruct GGUF, or set llm.chat_template")


def kv_cache_bytes(meta: dict[str, Any], tokens: int) -> int | None:
    """Bytes of f16 keys and values for `tokens` positions in every layer; None when the
    metadata lacks what it takes (an architecture without attention heads)."""
    arch = meta.get("general.architecture")
    try:
        layers = int(meta[f"{arch}.block_count"])
        embd = int(meta[f"{arch}.embedding_length"])
        heads = _per_layer(meta[f"{arch}.attention.head_count"], layers)
        kv_heads = _per_layer(meta.get(f"{arch}.attention.head_count_kv", heads), layers)
    except (KeyError, TypeError, ValueError):
        return None
    per_token = 0
    for n_head, n_kv in zip(heads, kv_heads, strict=True):
        key = int(meta.get(f"{arch}.attention.key_length") or embd // max(n_head, 1))
        value = int(meta.get(f"{arch}.attention.value_length") or embd // max(n_head, 1))
        per_token += n_kv * (key + value) * KV_BYTES
    return per_token * tokens


def _per_layer(value: Any, layers: int) -> list[int]:
    if isinstance(value, list):
        if len(value) != layers:
            raise ValueError("one value per layer expected")
        return [int(v) for v in value]
    return [int(value)] * layers


def memory(header: Header, llm: LlmSettings, build: Build | None) -> Check:
    """The model file, the KV cache of every slot and the prefix cache against free RAM; the
    share offloaded to a GPU against its free memory."""
    kv = kv_cache_bytes(header.metadata, llm.n_ctx * llm.parallel)
    if kv is None:
        detail = f"the KV cache size is unknown for {header.info.architecture}"
        return warn("memory", detail, "watch the memory at the first start (`free -h`)")
    model, prefix = header.info.size_bytes, llm.prefix_cache_mb * 2**20
    share = _gpu_share(header, llm, build)
    ram = (model + kv) * (1 - share) + prefix
    available, total = ram_available()
    found = [
        f"needs about {size(ram)} of RAM (model {size(model)}, KV cache {size(kv)} for "
        f"{llm.parallel} slots x {llm.n_ctx} tokens, prefix cache {size(prefix)}); "
        f"{size(available)} available of {size(total)}"
    ]
    needs = [(ram, available, total)]
    gpu_memory = _gpu_memory(build) if share else None
    if share and gpu_memory is None:
        found.append(f"{size((model + kv) * share)} of GPU memory: not checked, no nvidia-smi")
    elif share and gpu_memory is not None:
        free, gpu_total = gpu_memory
        found.append(
            f"{size((model + kv) * share)} of GPU memory; {size(free)} free of {size(gpu_total)}"
        )
        needs.append(((model + kv) * share, free, gpu_total))
    detail = "; ".join(found)
    lower = "lower llm.n_ctx, llm.parallel or llm.prefix_cache_mb, or use a smaller model"
    if any(need > most for need, _, most in needs):
        return fail("memory", detail, lower)
    if any(need > free for need, free, _ in needs):
        return warn("memory", detail, f"free memory, or {lower}")
    if share and gpu_memory is None:
        return warn(
            "memory", detail, "check the GPU's memory by hand (nvidia-smi: the driver's tools)"
        )
    return ok("memory", detail)


def _gpu_share(header: Header, llm: LlmSettings, build: Build | None) -> float:
    """The part of model and KV cache that goes to the GPU (by layers, the output one too)."""
    if build is None or not build.gpu_offload or not llm.n_gpu_layers:
        return 0.0
    if not any(d.kind in ("gpu", "igpu") for d in build.devices):
        return 0.0
    arch = header.metadata.get("general.architecture")
    layers = int(header.metadata.get(f"{arch}.block_count", 0)) + 1
    wanted = layers if llm.n_gpu_layers < 0 else min(llm.n_gpu_layers, layers)
    return wanted / layers


def _gpu_memory(build: Build | None) -> tuple[int, int] | None:
    """Free and total bytes of the GPUs, as llama.cpp's backend sees them, else nvidia-smi;
    None when neither says."""
    devices = [d for d in build.devices if d.kind in ("gpu", "igpu")] if build else []
    if total := sum(d.total_bytes for d in devices):
        return sum(d.free_bytes for d in devices), total
    gpus: list[Gpu] | None = nvidia_gpus()
    if not gpus:
        return None
    return sum(g.free_bytes for g in gpus), sum(g.total_bytes for g in gpus)


def ram_available() -> tuple[int, int]:
    """MemAvailable and MemTotal, within the cgroup's memory.max when one is set (a container
    sees the host's /proc/meminfo)."""
    fields = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0]) * 1024
    available, total = fields["MemAvailable"], fields["MemTotal"]
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        used = int((cgroup / "memory.current").read_text())
    except (OSError, ValueError):
        return available, total
    if limit.isdigit():
        total = min(total, int(limit))
        available = min(available, max(int(limit) - used, 0))
    return available, total
