"""Tags departments, channels, products and topics with a blank spaCy `zh` PhraseMatcher.

The phrases are the lookup tables `make kb` writes from kb/ (names and aliases of every
unit, channel and product; keywords of every topic). Matching is exact, case-insensitive
and character-based (spaCy's blank Chinese pipeline segments by character and needs no
model download), so a name is found wherever it stands, including inside a longer word
that jieba would have cut differently. Values are the matched text for departments,
channels and products (EntitySynonymMapper then maps them to kb ids) and the topic id
for topic keywords. Overlaps within one entity type keep the longest match.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import spacy
from spacy.matcher import PhraseMatcher
from spacy.util import filter_spans

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)
PATTERNS_FILE = "phrases.json"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class KBEntityRuler(GraphComponent, EntityExtractorMixin):
    """Finds knowledge-base names in a message and reports them as entities."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # lookup tables whose name is an entity type, tagged with the matched text
            "entities": ["department", "channel", "product"],
            # lookup tables `<prefix><topic id>` are tagged as entity `topic` = topic id
            "topic_prefix": "topic_",
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        phrases: dict[str, dict[str, list[str]]] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        # {entity type: {value ('' = the matched text): [phrases]}}
        self.phrases = phrases or {}
        self._nlp = spacy.blank("zh")
        self._matchers = self._build_matchers()

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> KBEntityRuler:
        return cls(config, model_storage, resource)

    def _build_matchers(self) -> dict[str, PhraseMatcher]:
        matchers = {}
        for entity, values in self.phrases.items():
            matcher = PhraseMatcher(self._nlp.vocab, attr="LOWER")
            for value, phrases in values.items():
                matcher.add(value or "=text", [self._nlp.make_doc(p) for p in phrases])
            matchers[entity] = matcher
        return matchers

    def train(self, training_data: TrainingData) -> Resource:
        """Collect the phrases from the lookup tables of the training data."""
        wanted = set(self._config["entities"])
        prefix = self._config["topic_prefix"]
        phrases: dict[str, dict[str, list[str]]] = {}
        for table in training_data.lookup_tables:
            name, elements = table["name"], table["elements"]
            if not isinstance(elements, list):
                continue
            if name in wanted:
                phrases.setdefault(name, {}).setdefault("", []).extend(elements)
            elif prefix and name.startswith(prefix):
                phrases.setdefault("topic", {})[name[len(prefix):]] = list(elements)
        self.phrases = phrases
        self._matchers = self._build_matchers()
        with self._model_storage.write_to(self._resource) as directory:
            (directory / PATTERNS_FILE).write_text(json.dumps(phrases, ensure_ascii=False), encoding="utf-8")
        return self._resource

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> KBEntityRuler:
        try:
            with model_storage.read_from(resource) as directory:
                phrases = json.loads((directory / PATTERNS_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            logger.warning("KBEntityRuler has no stored phrases: it will tag no entities")
            phrases = None
        return cls(config, model_storage, resource, phrases)

    def extract(self, text: str) -> list[dict[str, Any]]:
        """Entities in text: type, value, start and end (character offsets)."""
        doc = self._nlp.make_doc(text)
        entities = []
        for entity, matcher in self._matchers.items():
            spans = filter_spans(matcher(doc, as_spans=True))
            for span in spans:
                value = span.text if span.label_ == "=text" else span.label_
                entities.append({"entity": entity, "value": value,
                                 "start": span.start_char, "end": span.end_char})
        return sorted(entities, key=lambda e: (e["start"], e["entity"]))

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            found = self.add_extractor_name(self.extract(text))
            message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)
        return messages
