"""ONNX Runtime, imported with its telemetry off: the embedder and the export load it from here."""

from __future__ import annotations

import os

# ONNX Runtime starts its telemetry client (1DS, to mobile.events.data.microsoft.com) when the
# library is imported, and reads this variable then; disable_telemetry_events() after the
# import still leaves it resolving that host and keeping a device id under ~/.cache/Microsoft.
# Set here, it also holds for every child process started after the import.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
import onnxruntime  # after the variable, on purpose

onnxruntime.disable_telemetry_events()  # the documented switch, for the sessions of this process

__all__ = ["onnxruntime"]
