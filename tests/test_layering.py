"""Layering rules of STYLE.md that a test can hold."""

from __future__ import annotations

import subprocess
import sys

ML_LIBRARIES = ("llama_cpp", "chromadb", "presidio_analyzer", "sentence_transformers",
                "onnxruntime")  # fmt: skip


def imported_by(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return set(out.split())


def test_web_layer_imports_no_ml_library() -> None:
    loaded = imported_by("appliance.web.app")
    assert not [m for m in loaded if m.split(".")[0] in ML_LIBRARIES]


def test_importing_the_package_does_no_work() -> None:
    loaded = imported_by("appliance")
    assert not [m for m in loaded if m.startswith("appliance.")]


def test_the_ingest_use_case_depends_on_protocols_not_adapters() -> None:
    loaded = imported_by("appliance.ingest.pipeline")
    assert not [m for m in loaded if m.split(".")[0] in (*ML_LIBRARIES, "torch")]


def test_the_onnx_embedder_runs_without_torch() -> None:
    loaded = imported_by("appliance.embed.onnx")
    assert "onnxruntime" in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "sentence_transformers")]
