"""The base of the actions that answer from the knowledge base: the KB they read, given
(tests) or the process's own. Abstract, so rasa-sdk registers only its concrete subclasses."""

from __future__ import annotations

from abc import ABC, abstractmethod

from rasa_sdk import Action

from actions import kb as kb_module
from actions.kb import KnowledgeBase


class KnowledgeAction(Action, ABC):
    """An action reading `self.kb`; rasa-sdk instantiates it with no arguments."""

    def __init__(self, knowledge_base: KnowledgeBase | None = None) -> None:
        self.kb = knowledge_base or kb_module.default()

    @abstractmethod
    def name(self) -> str:
        """The action's name in domain.yml."""
