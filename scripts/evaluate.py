"""Evaluate the trained model on the held-out set (tests/nlu/heldout.yml) and write a report.

`make evaluate` writes into reports/nlu/: report.md (the table docs/measurements.md quotes),
report.json, intent_report.json (per-intent precision/recall/F1) and
confusion_matrix.png. Routing accuracy is the share of held-out topic questions whose
answer names the right lead department; latency is the NLU parse time per message on
this machine, measured after one warm-up parse.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from actions import kb  # noqa: E402


def quiet_logs() -> None:
    """Rasa logs every parse at debug level through structlog; a report wants none of it."""
    import logging

    import structlog

    logging.getLogger().setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def heldout(path: Path) -> list[tuple[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [(entry["intent"], line.strip()[2:].strip())
            for entry in data["nlu"] if "intent" in entry
            for line in entry["examples"].splitlines() if line.strip()]


async def parse_all(model: Path, examples: list[tuple[str, str]]) -> list[tuple[str, str, str, float]]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    await agent.parse_message("你好")  # warm-up: first call builds TF graphs
    results = []
    for intent, text in examples:
        start = time.perf_counter()
        parsed = await agent.parse_message(text)
        results.append((intent, text, parsed["intent"]["name"], time.perf_counter() - start))
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def routes_right(expected: kb.Topic, answered: kb.Topic | None) -> bool:
    """The answer names the expected topic's (first) lead department among its leads."""
    return answered is not None and expected.lead[0] in answered.lead


def metrics(results: list[tuple[str, str, str, float]], base: kb.KnowledgeBase) -> dict:
    topics = base.topics
    on_topic = [(e, p) for e, _, p, _ in results if e in topics]
    out_scope = [p for e, _, p, _ in results if e == "out_of_scope"]
    routed = sum(routes_right(topics[e], topics.get(p)) for e, p in on_topic)
    latencies = [t * 1000 for *_, t in results]
    return {
        "examples": len(results),
        "intent_accuracy": sum(e == p for e, _, p, _ in results) / len(results),
        "routing_accuracy": routed / len(on_topic),
        "topic_accuracy": sum(e == p for e, p in on_topic) / len(on_topic),
        "out_of_scope_rejection": sum(p not in topics for p in out_scope) / len(out_scope),
        "false_rejection": sum(p == "out_of_scope" for _, p in on_topic) / len(on_topic),
        "latency_ms_p50": statistics.median(latencies),
        "latency_ms_p95": percentile(latencies, 0.95),
    }


def write_reports(results, summary: dict, out: Path) -> None:
    from sklearn.metrics import classification_report, confusion_matrix

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    expected = [e for e, *_ in results]
    predicted = [p for _, _, p, _ in results]
    labels = sorted(set(expected) | set(predicted))
    report = classification_report(expected, predicted, labels=labels, output_dict=True, zero_division=0)
    summary["intent_macro_f1"] = report["macro avg"]["f1-score"]
    (out / "intent_report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (out / "report.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    errors = [{"text": t, "expected": e, "predicted": p} for e, t, p, _ in results if e != p]
    (out / "errors.json").write_text(json.dumps(errors, ensure_ascii=False, indent=2), encoding="utf-8")

    matrix = confusion_matrix(expected, predicted, labels=labels)
    figure, axes = plt.subplots(figsize=(14, 12))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("expected")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            if count:
                axes.text(j, i, str(count), ha="center", va="center", fontsize=6,
                          color="white" if i == j else "red")
    figure.tight_layout()
    figure.savefig(out / "confusion_matrix.png", dpi=110)

    rows = [
        ("held-out examples", f"{summary['examples']}"),
        ("intent accuracy", f"{summary['intent_accuracy']:.1%}"),
        ("intent macro F1", f"{summary['intent_macro_f1']:.3f}"),
        ("routing accuracy (right lead department)", f"{summary['routing_accuracy']:.1%}"),
        ("topic accuracy", f"{summary['topic_accuracy']:.1%}"),
        ("out-of-scope rejection", f"{summary['out_of_scope_rejection']:.1%}"),
        ("false rejection (topic taken for out of scope)", f"{summary['false_rejection']:.1%}"),
        ("NLU parse latency p50 / p95", f"{summary['latency_ms_p50']:.1f} ms / {summary['latency_ms_p95']:.1f} ms"),
    ]
    table = "| measure | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    (out / "report.md").write_text(table, encoding="utf-8")
    print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "zhuqi.tar.gz")
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "nlu" / "heldout.yml")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "nlu")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    quiet_logs()
    results = asyncio.run(parse_all(args.model, heldout(args.data)))
    write_reports(results, metrics(results, kb.load()), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
