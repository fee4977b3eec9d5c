"""The composition root: builds the real engine, stores and services from Settings."""

from __future__ import annotations

import logging
from pathlib import Path

from appliance.chat.service import ChatService
from appliance.config import Settings
from appliance.errors import ModelError
from appliance.llm.engine import ThreadedEngine
from appliance.llm.llamacpp import LlamaCppBackend
from appliance.llm.models import load_model_info
from appliance.services import Services
from appliance.store.conversations import ConversationStore
from appliance.store.db import Database

log = logging.getLogger(__name__)


def build_services(settings: Settings) -> Services:
    """Check the model file and open the database; the model itself loads on start-up."""
    model = load_model_info(settings.llm)
    if not model.has_chat_template and not settings.llm.chat_template:
        raise ModelError(
            f"{model.path} has no chat template (a base model, not a chat model?); "
            "use an instruct GGUF, or set llm.chat_template"
        )
    log.info("model %s: %s %s, %s parameters, context %d", model.path, model.architecture,
             model.quantization, f"{model.parameters:,}", model.context_length)  # fmt: skip
    db = Database(settings.data_path / "appliance.db")
    backend = LlamaCppBackend(Path(model.path), model.id, settings.llm)
    engine = ThreadedEngine(backend, settings.llm.queue_size)
    return Services(
        chat=ChatService(engine, ConversationStore(db)),
        engine=engine,
        model_ids=(model.id,),
        on_startup=(engine.start,),
        on_shutdown=(engine.stop, db.close),
    )
