"""The questions written for answer units, as `make kb` serves them to the ranker.

lexicon/answers/unit_questions/*.yml hold, per unit id, questions business owners would ask
that the unit answers (written from the seeds, never from the answer benchmark). `make kb`
checks every id against the units it builds and writes kb/generated/unit_questions.json with
each question normalized as the NLU normalizes a message (simplified characters, dialect,
English terms appended), beside the English as typed, which the ranker also searches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import yaml

ROOT = Path(__file__).resolve().parent.parent
WRITTEN = ROOT / "lexicon" / "answers" / "unit_questions"
LEXICON = ROOT / "lexicon"


def written(folder: Path = WRITTEN) -> dict[str, list[str]]:
    """Unit id → its questions, merged over the files (in name order)."""
    merged: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.yml")):
        for unit_id, asked in ((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("questions") or {}).items():
            if not isinstance(asked, list) or not all(isinstance(q, str) and q.strip() for q in asked):
                raise ValueError(f"{path.name}: {unit_id}: a list of non-empty questions")
            merged.setdefault(unit_id, []).extend(q.strip() for q in asked)
    return merged


def problems(unit_ids: Iterable[str], folder: Path = WRITTEN) -> list[str]:
    known = set(unit_ids)
    return [f"lexicon/answers/unit_questions: no unit {unit_id} (kb/generated/answer_units.json)"
            for unit_id in written(folder) if unit_id not in known]


def dumps(units: list[dict[str, Any]], folder: Path = WRITTEN) -> str:
    from components.text_normalizer import TextNormalizer, mostly_english

    found = problems((u["id"] for u in units), folder)
    if found:
        raise ValueError("\n".join(found))
    normalizer = TextNormalizer.from_lexicon(LEXICON)
    served = {unit_id: [" ".join(filter(None, [q if mostly_english(q) else "", normalizer.normalize(q)]))
                        for q in asked]
              for unit_id, asked in written(folder).items()}
    header = {"generated_by": "make kb (scripts/unit_questions.py) from lexicon/answers/unit_questions: do not edit"}
    return json.dumps({**header, "questions": served}, ensure_ascii=False, indent=1) + "\n"
