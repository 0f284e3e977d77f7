"""Benchmark understanding on realistic questions, side by side with a BM25 search baseline.

`make bench-nlu` runs the trained model over tests/nlu/bench.yml (questions the model never
trains on: colloquial, typos, traditional characters, English, long messages, multi-turn
follow-ups, out of scope) and writes reports/bench/report.md and report.json:

- routing accuracy: the answer names the expected lead department;
- policy-item hit rate: an item the answer cites is one of the expected topic's items;
- channel hit rate: the first channel named is one of the expected topic's channels;
- out-of-scope rejection and false rejection (an in-scope question declined);
- the same for BM25 over the policy items (scripts/bm25.py), best item's lead unit;
- NLU parse latency p50/p95 on this machine.

Follow-ups are replayed turn by turn with the assistant's own topic logic
(actions.topics.current_topic); the search baseline sees the last turn only, as a search
box would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from rasa_sdk import Tracker  # noqa: E402

from actions import kb  # noqa: E402
from actions.render import MAX_POLICIES  # noqa: E402
from actions.topics import current_topic  # noqa: E402
from scripts import bm25  # noqa: E402
from scripts.evaluate import percentile, quiet_logs, routes_right  # noqa: E402

OUT_OF_SCOPE = "out_of_scope"


@dataclass
class Case:
    """One benchmark question or conversation and the topic its last answer must be about."""

    turns: list[str]
    expected: str  # a topic id, or out_of_scope
    category: str


@dataclass
class Outcome:
    topic: str | None  # the topic answered, None when declined or asked back
    intent: str
    latencies: list[float] = field(default_factory=list)


def load_cases(path: Path) -> list[Case]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases = [Case([q["text"]], q["intent"], q["category"]) for q in data.get("questions", [])]
    cases += [Case(list(c["turns"]), c["topic"], c["category"]) for c in data.get("conversations", [])]
    return cases


async def run_assistant(agent: Any, base: kb.KnowledgeBase, case: Case) -> Outcome:
    """Replay the turns: each parse, then the topic the assistant would answer on."""
    slot: str | None = None
    topic: str | None = None
    intent = ""
    latencies = []
    for text in case.turns:
        start = time.perf_counter()
        parsed = await agent.parse_message(text)
        latencies.append(time.perf_counter() - start)
        intent = parsed["intent"]["name"]
        tracker = Tracker("bench", {"topic": slot}, parsed, [], False, None, {}, "action_listen")
        answering = intent in base.topics or intent.startswith("ask_")
        topic = current_topic(base, tracker) if answering else None
        slot = topic or slot
    return Outcome(topic, intent, latencies)


def score_assistant(base: kb.KnowledgeBase, case: Case, outcome: Outcome) -> dict[str, bool]:
    if case.expected == OUT_OF_SCOPE:
        return {"rejected": outcome.topic is None}
    if case.expected not in base.topics:  # greet, thanks, asking for a person …
        return {"other_intent": outcome.intent == case.expected}
    expected = base.topics[case.expected]
    got = base.topic(outcome.topic)
    if got is None:
        return {"routed": False, "item": False, "channel": False,
                "false_rejection": outcome.intent == OUT_OF_SCOPE}
    gold_items = {q.policy for q in expected.policies}
    cited = {q.policy for q in got.policies[:MAX_POLICIES]}
    return {
        "routed": routes_right(expected, got),
        "item": bool(cited & gold_items) if gold_items else got.id == expected.id,
        "channel": bool(got.channels) and got.channels[0] in expected.channels,
        "false_rejection": False,
    }


def score_bm25(base: kb.KnowledgeBase, index: bm25.BM25Index, case: Case) -> dict[str, bool]:
    best = index.best(case.turns[-1])
    if case.expected == OUT_OF_SCOPE:
        return {"rejected": best is None}
    if case.expected not in base.topics:
        return {"other_intent": False}  # a search box cannot greet or hand over
    expected = base.topics[case.expected]
    gold_items = {q.policy for q in expected.policies}
    return {
        "routed": best is not None and expected.lead[0] in best.lead,  # same test as routes_right
        "item": best is not None and best.id in gold_items,
        "false_rejection": best is None,
    }


def rate(rows: list[dict[str, bool]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return sum(values) / len(values) if values else None


def summarize(rows: list[tuple[Case, dict[str, bool]]]) -> dict[str, Any]:
    scores = [s for _, s in rows]
    by_category: dict[str, list[dict[str, bool]]] = defaultdict(list)
    for case, score in rows:
        by_category[case.category].append(score)
    return {
        "routing_accuracy": rate(scores, "routed"),
        "policy_item_hit_rate": rate(scores, "item"),
        "channel_hit_rate": rate(scores, "channel"),
        "out_of_scope_rejection": rate(scores, "rejected"),
        "false_rejection": rate(scores, "false_rejection"),
        "other_intents": rate(scores, "other_intent"),
        "by_category": {c: rate(s, "routed") if c != OUT_OF_SCOPE else rate(s, "rejected")
                        for c, s in sorted(by_category.items())},
    }


async def benchmark(agent: Any, base: kb.KnowledgeBase, cases: list[Case]) -> dict[str, Any]:
    """Both systems over all cases: summaries and the assistant's parse latencies."""
    await agent.parse_message("你好")  # warm-up
    index = bm25.index_for(base)
    assistant, baseline, latencies, misses = [], [], [], []
    for case in cases:
        outcome = await run_assistant(agent, base, case)
        latencies += outcome.latencies
        score = score_assistant(base, case, outcome)
        assistant.append((case, score))
        baseline.append((case, score_bm25(base, index, case)))
        if not score.get("routed", score.get("rejected", score.get("other_intent"))):
            misses.append({"turns": case.turns, "expected": case.expected, "got": outcome.topic,
                           "intent": outcome.intent, "category": case.category})
    ms = [t * 1000 for t in latencies]
    return {
        "cases": len(cases),
        "messages": len(ms),
        "assistant": summarize(assistant),
        "bm25": summarize(baseline),
        "latency_ms_p50": statistics.median(ms),
        "latency_ms_p95": percentile(ms, 0.95),
        "misses": misses,
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def table(result: dict[str, Any], cases: list[Case]) -> str:
    a, b = result["assistant"], result["bm25"]
    counts = defaultdict(int)
    for case in cases:
        counts[case.category] += 1
    rows = [
        ("routing accuracy (right lead department)", a["routing_accuracy"], b["routing_accuracy"]),
        ("policy-item hit rate", a["policy_item_hit_rate"], b["policy_item_hit_rate"]),
        ("channel hit rate", a["channel_hit_rate"], None),
        ("out-of-scope rejection", a["out_of_scope_rejection"], b["out_of_scope_rejection"]),
        ("false rejection (in scope, declined)", a["false_rejection"], b["false_rejection"]),
        ("greeting, thanks, asking for a person … recognised", a["other_intents"], b["other_intents"]),
    ]
    rows += [(f"… {c} ({counts[c]})", a["by_category"][c], b["by_category"][c]) for c in a["by_category"]]
    lines = [f"{result['cases']} cases, {result['messages']} messages "
             f"(tests/nlu/bench.yml, never trained on)\n",
             "| measure | assistant | BM25 over policy items |", "|---|---|---|"]
    lines += [f"| {name} | {_pct(x)} | {_pct(y)} |" for name, x, y in rows]
    lines.append(f"| NLU parse latency p50 / p95 | {result['latency_ms_p50']:.1f} ms / "
                 f"{result['latency_ms_p95']:.1f} ms | — |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "zhuqi.tar.gz")
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "nlu" / "bench.yml")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    args = parser.parse_args()
    from rasa.core.agent import Agent

    cases = load_cases(args.data)
    quiet_logs()
    result = asyncio.run(benchmark(Agent.load(str(args.model)), kb.load(), cases))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    text = table(result, cases)
    (args.out / "report.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
