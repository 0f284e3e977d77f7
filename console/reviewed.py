"""data/nlu/reviewed.yml: the training examples staff labelled in the review inbox.

Rasa NLU YAML (version "3.1") in the long form, so that each example carries who labelled it
and when (Rasa 3.6 keeps an example's `metadata`; `load_data` reads it back):

    nlu:
    - intent: company_opening
      examples:
      - text: 工商执照在哪里弄
        metadata: {labelled_by: boss, labelled_at: '2026-03-10T15:02:11+08:00'}

Rules the file keeps: intents sorted, texts sorted within them, a text at most once (labelled
again with another intent, it moves there; with the same one, nothing changes), nothing but
the masked text (insight/privacy.py, applied again here). It is created with its first
example — an `nlu:` with no examples would be valid, an empty file would not — and `rasa
train` reads it with the rest of data/. A text already among the hand-written examples beside
it is not copied (`in_training`); an evaluation question never enters the training data
(`held_out`), or the figures would measure nothing: the held-out set, the robustness
benchmark and the answer benchmark's longer questions, as scripts/retrain.py checks them
(a reviewed example among them fails its run). Writes take an flock on the folder and replace
the file whole, so two consoles never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import yaml

from insight.privacy import mask
from insight.turns import TIMEZONE

HEADER = ("# Examples labelled by staff in the console's review inbox (docs/insight.md), written by\n"
          "# console/reviewed.py: sorted, each text once, masked. Label in the console rather than here.\n")
# Rasa's entity annotation, [text](entity) or [text]{…}: a user's brackets must not become one
ANNOTATION = re.compile(r"\[([^\]]*)\](\([^)]*\)|\{[^}]*\})")
WRITTEN, MOVED, UNCHANGED, IN_TRAINING, HELD_OUT, EMPTY = (
    "written", "moved", "unchanged", "in_training", "held_out", "empty")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    labelled_by: str
    labelled_at: str  # ISO 8601 in the district's time


def when(at: float) -> str:
    return datetime.fromtimestamp(at, TIMEZONE).isoformat(timespec="seconds")


def clean(text: str) -> str:
    """The text as the file holds it: masked, trimmed, one line, no entity annotation."""
    text = " ".join((mask(text) or "").split())
    return ANNOTATION.sub(lambda m: m.group(0).replace("[", "［").replace("]", "］"), text)


def _yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def example_texts(path: Path) -> dict[str, str]:
    """Text → intent of an NLU file in either form (the `examples: |` block or the list)."""
    entries = _yaml(path).get("nlu") or []
    found: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or "intent" not in entry:
            continue
        examples = entry.get("examples") or []
        if isinstance(examples, str):
            texts = [line.strip()[2:] for line in examples.splitlines() if line.strip().startswith("- ")]
        else:
            texts = [str(e.get("text", "")) if isinstance(e, dict) else str(e) for e in examples]
        for text in texts:
            text = ANNOTATION.sub(r"\1", text).strip()
            if text:
                found.setdefault(text, str(entry["intent"]))
    return found


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def evaluation_texts(root: Path) -> set[str]:
    """The questions the figures are measured on, read as scripts/retrain.py reads them: the
    held-out set, the robustness benchmark's questions and turns, the answer benchmark's
    questions and turns of more than six characters. Read again when one of them changes."""
    files = (root / "tests" / "nlu" / "heldout.yml", root / "tests" / "nlu" / "bench.yml",
             root / "tests" / "answers" / "bench.yml")
    return _evaluation_texts(*files, stamps=tuple(_mtime(f) for f in files))


@lru_cache(maxsize=4)
def _evaluation_texts(heldout: Path, nlu_bench: Path, answer_bench: Path, stamps: tuple) -> frozenset[str]:
    held = set(example_texts(heldout))
    bench = _yaml(nlu_bench)
    held |= {str(q.get("text")) for q in bench.get("questions") or [] if isinstance(q, dict)}
    held |= {str(t) for c in bench.get("conversations") or [] if isinstance(c, dict) for t in c.get("turns") or []}
    answers = _yaml(answer_bench)
    asked = (t for q in answers.get("questions") or [] if isinstance(q, dict)
             for t in (q.get("turns") or [q.get("text") or ""]))
    return frozenset(held | {str(t) for t in asked if len(str(t)) > 6})


class ReviewedFile:
    """The reviewed examples' file, and the examples it must not take (`evaluation_root`: the
    project whose tests/ hold the evaluation questions; None: no check)."""

    def __init__(self, path: Path, evaluation_root: Path | None = None) -> None:
        self.path, self.evaluation_root = Path(path), evaluation_root

    def read(self) -> dict[str, Example]:
        """Text → its example, as the file holds them."""
        if not self.path.exists():
            return {}
        data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        found: dict[str, Example] = {}
        for entry in data.get("nlu") or []:
            for item in entry.get("examples") or []:
                meta = item.get("metadata") or {}
                found[str(item["text"])] = Example(str(item["text"]), str(entry["intent"]),
                                                   str(meta.get("labelled_by", "")), str(meta.get("labelled_at", "")))
        return found

    def protected(self) -> tuple[set[str], set[str]]:
        """(texts of the hand-written examples beside the file, the evaluation questions)."""
        beside = set()
        for other in sorted(self.path.parent.glob("*.yml")):
            if other.resolve() != self.path.resolve():
                beside |= set(example_texts(other))
        return beside, set(evaluation_texts(self.evaluation_root)) if self.evaluation_root else set()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)  # closing releases the lock

    def add(self, examples: list[Example]) -> list[str]:
        """Add the examples; what became of each (WRITTEN, MOVED, UNCHANGED, IN_TRAINING,
        HELD_OUT, EMPTY), in their order. The file is rewritten only when something changed."""
        beside, held = self.protected()
        results = []
        with self._locked():
            current = self.read()
            changed = False
            for example in examples:
                text = clean(example.text)
                if not text or text.startswith("/"):  # a button's payload is no typed question
                    results.append(EMPTY)
                elif text in held:
                    results.append(HELD_OUT)
                elif text in beside:
                    results.append(IN_TRAINING)
                elif text in current and current[text].intent == example.intent:
                    results.append(UNCHANGED)
                else:
                    results.append(MOVED if text in current else WRITTEN)
                    current[text] = Example(text, example.intent, example.labelled_by, example.labelled_at)
                    changed = True
            if changed:
                self._write(current)
        return results

    def _write(self, examples: dict[str, Example]) -> None:
        by_intent: dict[str, list[Example]] = {}
        for example in examples.values():
            by_intent.setdefault(example.intent, []).append(example)
        document = {"version": "3.1", "nlu": [
            {"intent": intent, "examples": [
                {"text": e.text, "metadata": {"labelled_by": e.labelled_by, "labelled_at": e.labelled_at}}
                for e in sorted(group, key=lambda e: e.text)]}
            for intent, group in sorted(by_intent.items())]}
        body = HEADER + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=10_000)
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.path.parent, prefix=".reviewed.",
                                             suffix=".tmp", delete=False)
        try:
            with handle:
                handle.write(body)
            os.replace(handle.name, self.path)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
