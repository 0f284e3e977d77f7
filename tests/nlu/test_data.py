"""Training data, held-out set, domain and knowledge base agree with each other."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONVERSATION_INTENTS = {"greet", "goodbye", "thank", "bot_capabilities", "human_handoff", "complain", "out_of_scope",
                        "ask_materials", "ask_department", "ask_time_limit", "ask_channel", "ask_cost",
                        "ask_details", "vague_request"}
# reached only by button payloads and the widget's channel (/rate_service{…}), never typed
PAYLOAD_INTENTS = {"rate_service", "answer_rated_badly", "handoff_resolved"}


def examples(paths: list[Path]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in paths:
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" in entry:
                given = entry["examples"]  # the `examples: |` block, or the list data/nlu/reviewed.yml uses
                lines = ([line.strip()[2:].strip() for line in given.splitlines() if line.strip()]
                         if isinstance(given, str) else [str(e["text"]).strip() for e in given])
                found.setdefault(entry["intent"], []).extend(lines)
    return found


TRAINING = examples(sorted((ROOT / "data" / "nlu").glob("*.yml")))
HELDOUT = examples([ROOT / "tests" / "nlu" / "heldout.yml"])


def test_domain_intents_are_the_topics_plus_conversation(knowledge_base) -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert set(domain["intents"]) == set(knowledge_base.topics) | CONVERSATION_INTENTS | PAYLOAD_INTENTS
    assert set(TRAINING) == set(domain["intents"]) - PAYLOAD_INTENTS


def test_every_intent_has_enough_training_examples() -> None:
    for intent, lines in TRAINING.items():
        assert len(lines) >= (100 if intent == "out_of_scope" else 30), intent


def test_heldout_never_appears_in_training() -> None:
    training = {line for lines in TRAINING.values() for line in lines}
    leaked = [line for lines in HELDOUT.values() for line in lines if line in training]
    assert leaked == []


def test_heldout_covers_every_intent() -> None:
    assert set(HELDOUT) == set(TRAINING)
    assert sum(map(len, HELDOUT.values())) >= 300
