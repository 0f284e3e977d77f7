"""Figures and tables for scripts/bench_prod.py: latency percentiles, outcomes, windows of a fault."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from production.bench_clients import Sent


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def outcomes(sent: Iterable[Sent], seconds: float | None = None) -> dict[str, Any]:
    """Counts, throughput (answers a second over `seconds`) and answer latency of a set of messages."""
    sent = list(sent)
    latencies = [m.latency for m in sent if m.outcome == "ok" and m.latency is not None]
    count = Counter(m.outcome for m in sent)
    row: dict[str, Any] = {"sent": len(sent), "ok": count["ok"], "apology": count["apology"],
                           "error": count["error"], "lost": count["lost"]}
    if seconds:
        row["answers_per_s"] = (count["ok"] + count["apology"]) / seconds
    for name, share in (("p50_s", 0.50), ("p95_s", 0.95), ("p99_s", 0.99)):
        row[name] = percentile(latencies, share)
    row["max_s"] = max(latencies) if latencies else None
    return row


def by_channel(sent: list[Sent], seconds: float | None = None) -> list[dict[str, Any]]:
    rows = []
    for channel in sorted({m.channel for m in sent}):
        rows.append({"channel": channel, **outcomes([m for m in sent if m.channel == channel], seconds)})
    rows.append({"channel": "all", **outcomes(sent, seconds)})
    return rows


def failures(sent: Iterable[Sent]) -> list[dict[str, Any]]:
    """Every kind of failure (and how WeChat answers came), with its count."""
    kinds = Counter((m.channel, m.outcome, m.kind) for m in sent if m.outcome != "ok")
    rows = [{"channel": c, "outcome": o, "kind": k, "count": n} for (c, o, k), n in sorted(kinds.items())]
    via = Counter(m.via for m in sent if m.channel == "wechat" and m.answered)
    rows += [{"channel": "wechat", "outcome": "answered", "kind": f"via {how}", "count": n} for how, n in via.items()]
    return rows


def replies(sent: Iterable[Sent], limit: int = 6) -> list[dict[str, Any]]:
    """What users were told, most frequent first (the first 60 characters)."""
    said = Counter((m.channel, m.outcome, m.kind, m.reply.replace("\n", " ")[:60]) for m in sent)
    return [{"channel": c, "outcome": o, "kind": k, "reply": r, "count": n} for (c, o, k, r), n in said.most_common(limit)]


def windows(sent: list[Sent], began: float, fault: float, repaired: float, end: float) -> list[dict[str, Any]]:
    """Outcomes before the fault, while it lasted (until repaired) and after; times in seconds
    since the scenario began."""
    spans = (("before", began, fault), ("during", fault, repaired), ("after", repaired, end))
    return [{"window": name, "from_s": start - began, "to_s": stop - began,
             **outcomes([m for m in sent if start <= m.at < stop], max(stop - start, 1e-9))}
            for name, start, stop in spans]


def recovery(sent: list[Sent], fault: float, repaired: float) -> dict[str, Any]:
    """When failures began and ended, relative to the fault, and the first answer after repair."""
    failed = sorted(m.at for m in sent if not m.outcome == "ok" and m.at >= fault - 2)
    after = sorted(m.at + (m.latency or 0) for m in sent if m.outcome == "ok" and m.at >= repaired)
    late_failures = [t for t in failed if t >= repaired]
    return {"first_failure_after_fault_s": failed[0] - fault if failed else None,
            "last_failure_after_fault_s": failed[-1] - fault if failed else None,
            "first_answer_after_repair_s": after[0] - repaired if after else None,
            "failures_after_repair": len(late_failures),
            "clean_after_repair_s": (late_failures[-1] - repaired) if late_failures else 0.0}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def table(title: str, rows: list[dict[str, Any]]) -> str:
    """A plain text table (Markdown pipes), columns in the order of the first row's keys."""
    if not rows:
        return f"\n### {title}\n(none)\n"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"  # noqa: E731
    return "\n".join([f"\n### {title}", line(columns), line(["-" * w for w in widths]), *map(line, cells)]) + "\n"


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
