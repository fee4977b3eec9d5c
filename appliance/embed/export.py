"""Exports a sentence-transformers folder to ONNX once (torch), optionally int8, into a cache."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

from appliance.errors import ModelError

log = logging.getLogger(__name__)
EXPORT_VERSION = "1"  # bump when the export recipe changes, so caches are rebuilt
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_file(model_dir: Path, cache_dir: Path, quantize: bool) -> Path:
    """The cached ONNX file for these weights, exported on first use."""
    target = export_path(model_dir, cache_dir, quantize)
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("exporting embedding model %s to ONNX (once): %s", model_dir, target)
    # In a child process: torch, once loaded and run, leaves threads that halve llama.cpp's
    # speed in the same process (measured: 89 against 165 tokens/s).
    kind = "int8" if quantize else "fp32"
    command = [sys.executable, "-m", "appliance.embed.export", str(model_dir), str(target), kind]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own module
    if done.returncode != 0 or not target.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ModelError(
            f"exporting the embedding model {model_dir} to ONNX failed: {' / '.join(tail)}"
        )
    return target


def export_path(model_dir: Path, cache_dir: Path, quantize: bool) -> Path:
    """Where the ONNX export of these weights is kept (named by their hash), made or not."""
    key = weights_key(model_dir)
    name = f"{model_dir.name}-{key}-{'int8' if quantize else 'fp32'}-v{EXPORT_VERSION}.onnx"
    return cache_dir / name


def _export_to(model_dir: Path, target: Path, quantize: bool) -> None:
    """The export itself (run in the child): fp32, then int8, then an atomic rename."""
    # onnxruntime's telemetry off before torch.onnx or the quantization can load it
    import appliance.embed.runtime  # noqa: F401

    cache_dir, name = target.parent, target.name
    fp32 = cache_dir / f".{name}.{os.getpid()}.fp32"
    try:
        _export(model_dir, fp32)
        result = cache_dir / f".{name}.{os.getpid()}.tmp"
        if quantize:
            _quantize(fp32, result)
        else:
            fp32.replace(result)
        result.replace(target)  # atomic: a crash never leaves a half-written model behind
    finally:
        for leftover in cache_dir.glob(f".{name}.{os.getpid()}.*"):
            leftover.unlink(missing_ok=True)


def weights_key(model_dir: Path) -> str:
    """A short hash of the model's weights: names its export, and its vectors."""
    digest = hashlib.sha256()
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not weights:
        raise ModelError(f"embedding model folder {model_dir} has no weights (*.safetensors)")
    for file in weights:
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:12]


def _export(model_dir: Path, out: Path) -> None:
    # Local files only, and none of the hub's telemetry: forced, this is a child of our own.
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model = AutoModel.from_pretrained(
        str(model_dir), local_files_only=True, attn_implementation="eager"
    )
    model.eval()

    class Wrapper(torch.nn.Module):
        """Passes the inputs by keyword, as the model's forward expects; returns one tensor."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model  # a submodule, so its weights export as weights, not constants

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            out = self.inner(input_ids=ids, attention_mask=mask, token_type_ids=types)
            return out.last_hidden_state

    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter of the legacy exporter
        torch.onnx.export(
            Wrapper(),
            (sample, sample, torch.zeros_like(sample)),
            str(out),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def _quantize(source: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weights keep cosine ≥0.98 to fp32 (per-tensor fell to ~0.90 on real text).
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it advises "pre-processing" on the root logger; not needed
    try:
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


if __name__ == "__main__":  # python -m appliance.embed.export MODEL_DIR TARGET int8|fp32
    _export_to(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "int8")
