"""Keep a short fragment from being taken for a goodbye, a complaint or out of scope.

DIET has seen few messages of two to six characters, and on them it is confidently wrong
(「钱的问题」 → goodbye 0.76, 「办个证」 → complain 0.67, 「在哪办」 → out of scope 1.0). A
short message keeps such an intent only when it holds one of that intent's words
(lexicon/short_messages.yml); otherwise it becomes `nlu_fallback`, which the assistant
answers on the conversation's topic or with an ask-back. Runs after FallbackClassifier.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.text_normalizer import RAW_TEXT

FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ShortMessageGuard(GraphComponent):
    """Turn an unsupported goodbye/complaint/greeting/out-of-scope on a short message into fallback."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"lexicon_file": "lexicon/short_messages.yml"}

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """The lexicon's content, so that `rasa train` notices a changed word list."""
        path = Path(config.get("lexicon_file") or cls.get_default_config()["lexicon_file"])
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None

    def __init__(self, config: dict[str, Any]) -> None:
        raw = yaml.safe_load(Path(config["lexicon_file"]).read_text(encoding="utf-8"))
        self.max_chars = int(raw["max_chars"])
        self.require = {intent: [str(w).lower() for w in words] for intent, words in raw["require"].items()}
        self.service_words = [str(w).lower() for w in raw["service_words"]]

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "ShortMessageGuard":
        return cls(config)

    def unsupported(self, text: str, intent: str | None) -> bool:
        """Whether a message of `text` should not keep `intent`."""
        text = "".join(text.split()).lower()
        if not text or len(text) > self.max_chars or text.startswith("/"):
            return False
        if intent == OUT_OF_SCOPE:
            return any(w in text for w in self.service_words)
        words = self.require.get(intent or "")
        return words is not None and not any(w in text for w in words)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            typed = message.get(RAW_TEXT) or message.get(TEXT) or ""
            if self.unsupported(typed, intent.get(INTENT_NAME_KEY)) or (
                    typed != message.get(TEXT) and self.unsupported(message.get(TEXT) or "", intent.get(INTENT_NAME_KEY))):
                message.set(INTENT, {INTENT_NAME_KEY: FALLBACK,
                                     PREDICTED_CONFIDENCE_KEY: intent.get(PREDICTED_CONFIDENCE_KEY, 0.0)},
                            add_to_output=True)
                ranking = message.get(INTENT_RANKING_KEY) or []
                message.set(INTENT_RANKING_KEY, [{INTENT_NAME_KEY: FALLBACK, PREDICTED_CONFIDENCE_KEY: 1.0}, *ranking],
                            add_to_output=True)
        return messages
