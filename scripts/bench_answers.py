"""Benchmark the answers users see, side by side with a search box over the seeds' sentences.

`make bench-answers` replays tests/answers/bench.yml (questions as business owners type
them, each with the exact seed passage that answers it, or `no_fact: true`) through the
real assistant — the trained model and the action server, as REST users reach them — and
judges the visible text of the last reply:

- fact in the reply, and in its first 160 characters (the fact, or any passage in the case's
  `also:` list — another seed passage that answers the question as well, e.g. the same item
  restated in the 2023 list and the 2022 article; both columns and the search box use them);
- correct lead department (the first department the reply names is an expected one);
- median visible length and departments named;
- for `no_fact` questions: the first line says the documents do not publish it, and no
  number appears that the seeds do not hold;
- for the short-message set: a follow-up answer on an expected topic or an ask-back, and
  never out of scope, a goodbye or a complaint;
- parse and unit-ranking latency (p50/p95).

The baseline is Okapi BM25 over every sentence of the five seeds (scripts/bm25.py's
tokenizer), showing the top sentence and, for a policy item, its lead unit.
`--split tune|holdout|all` picks the questions (the holdout half is never tuned on).
Writes reports/answers/report.md and report.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import yaml  # noqa: E402

from actions import answers, kb, secret  # noqa: E402
from actions.okapi import Okapi  # noqa: E402
from actions.question import longest_matches  # noqa: E402
from scripts import bm25  # noqa: E402
from scripts.evaluate import percentile, quiet_logs  # noqa: E402

if TYPE_CHECKING:
    from rasa.utils.endpoints import EndpointConfig

SEEDS = ROOT / "kb" / "sources"
FIRST = 160
# what a reply does, read from the actions Rasa ran after the user's last message
BAD_ACTIONS = {"utter_out_of_scope": "out_of_scope", "utter_goodbye": "goodbye", "action_start_handoff": "handoff"}
ASK_BACK_ACTIONS = {"action_clarify_topic", "utter_ask_topic", "utter_default"}
ANSWER_ACTIONS = {"action_answer_topic", "action_answer_followup", "action_answer_details"}
NO_FACT = re.compile(r"没有公布|没有写明|没有列出|未公布|give no|do not publish")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
LEAD_MARK = re.compile(r"负责部门[:：]|牵头单位[:：]|Lead department:|is led by")


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def seed_text() -> str:
    return "".join(squash(p.read_text(encoding="utf-8")) for p in sorted(SEEDS.glob("*.txt")))


def department_names(base: kb.KnowledgeBase) -> list[tuple[str, str]]:
    """(name, id) for every department name and alias, longest first (so 区市场监管局 beats 市场监管局);
    collectives (各管委会, 各街道办事处) are no department a reply could make responsible."""
    pairs = {(n, d.id) for d in base.departments.values() if d.kind != "group"
             for n in (d.name, d.full_name, *d.aliases) if n and len(n) > 2}
    return sorted(pairs, key=lambda p: -len(p[0]))


def departments_in(text: str, names: list[tuple[str, str]]) -> list[str]:
    """Department ids named in text, in order of first mention."""
    return list(dict.fromkeys(unit for _, unit in sorted(longest_matches(text, names))))


def judge(case: dict[str, Any], visible: str, names: list[tuple[str, str]], seeds: str) -> dict[str, Any]:
    """The columns of one case, from the text the user sees."""
    flat = squash(visible)
    named = departments_in(visible, names)
    # the department the reply makes responsible: the one its 负责部门/牵头单位 line names,
    # else the first named (a passage may mention 重庆海关 before the lead line)
    marked = LEAD_MARK.search(visible)
    responsible = departments_in(visible[marked.end():], names) if marked else named
    row: dict[str, Any] = {"length": len(visible), "departments": len(named),
                           "lead": bool(responsible) and responsible[0] in case.get("lead", [])}
    if case.get("no_fact"):
        first = visible.split("\n", 1)[0]
        invented = [n for n in NUMBER.findall(visible) if len(n) > 1 and n not in seeds]
        row["honest"] = bool(NO_FACT.search(first)) and not invented
    else:
        facts = [squash(f) for f in [case["fact"], *case.get("also", [])]]
        first = squash(visible[:FIRST])
        row["fact"] = any(f in flat for f in facts)
        row["fact_first"] = any(f in first for f in facts)
    return row


@contextmanager
def action_server(port: int) -> Iterator[EndpointConfig]:
    """The project's action server as `make run` starts it: on loopback, behind a secret."""
    from rasa.utils.endpoints import EndpointConfig

    shared = secrets.token_urlsafe(32)
    process = subprocess.Popen(
        [sys.executable, "-m", "actions.server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env={**os.environ, secret.SECRET_ENV: shared, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise RuntimeError("the action server did not start")
        yield EndpointConfig(f"{url}/webhook", headers=secret.headers(shared))
    finally:
        process.terminate()
        process.wait(timeout=20)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def visible_text(messages: list[dict[str, Any]]) -> str:
    """What a REST or widget user reads: the texts and the titles of the choices offered."""
    parts = []
    for message in messages:
        if message.get("text"):
            parts.append(message["text"])
        parts += [b.get("title", "") for b in message.get("buttons") or []]
    return "\n".join(parts)


async def actions_after_last_user(agent: Any, sender: str) -> tuple[list[str], str | None]:
    tracker = await agent.tracker_store.retrieve(sender)
    names: list[str] = []
    for event in reversed(list(tracker.events)):
        if event.type_name == "user":
            break
        if event.type_name == "action" and event.action_name != "action_listen":
            names.append(event.action_name)
        elif event.type_name == "bot" and (event.metadata or {}).get("utter_action"):
            names.append(event.metadata["utter_action"])  # a response a custom action sent
    return list(reversed(names)), tracker.get_slot("topic")


async def say(agent: Any, sender: str, text: str) -> list[dict[str, Any]]:
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    output = CollectingOutputChannel()
    await agent.handle_message(UserMessage(text, output, sender))
    return output.messages


async def replay(agent: Any, turns: list[str]) -> tuple[str, list[str], str | None, list[dict[str, Any]]]:
    sender = f"bench-{uuid.uuid4().hex}"
    messages: list[dict[str, Any]] = []
    for text in turns:
        messages = await say(agent, sender, text)
    actions, topic = await actions_after_last_user(agent, sender)
    return visible_text(messages), actions, topic, messages


def answered_unit(messages: list[dict[str, Any]]) -> str | None:
    """The answer unit the reply cited (its service card says), for reading the misses."""
    cards = [m["custom"] for m in messages if isinstance(m.get("custom"), dict) and m["custom"].get("type") == "service_card"]
    answered = (cards[-1].get("answer") or {}) if cards else {}
    return answered.get("unit")


def short_outcome(case: dict[str, Any], actions: list[str], messages: list[dict[str, Any]]) -> str:
    """followup (an answer on an expected topic), ask_back, wrong_topic, or what went wrong."""
    cards = [m["custom"] for m in messages if isinstance(m.get("custom"), dict) and m["custom"].get("type") == "service_card"]
    if cards:  # an answer (a dispute's answer is followed by a handoff to its department: still an answer)
        return "answer" if cards[-1].get("topic") in case["expect"] else "wrong_topic"
    for name in actions:
        if name in BAD_ACTIONS:
            return BAD_ACTIONS[name]
    if any(m.get("buttons") for m in messages) or set(actions) & ASK_BACK_ACTIONS:
        return "ask_back"
    return "other"


class SentenceSearch:
    """The baseline: BM25 over every sentence of the seeds, as a plain search box."""

    def __init__(self, base: kb.KnowledgeBase) -> None:
        self.sentences: list[tuple[str, str | None]] = []  # (sentence, lead unit id of its item)
        items = {squash(p.text)[:40]: p for p in base.policies.values()}
        for path in sorted(SEEDS.glob("*.txt")):
            for line in path.read_text(encoding="utf-8").splitlines():
                for sentence in re.split(r"(?<=[。！？!?；])", line.strip()):
                    if len(sentence.strip()) >= 6:
                        policy = next((p for k, p in items.items() if squash(sentence)[:40] and k.startswith(squash(sentence)[:20])), None)
                        self.sentences.append((sentence.strip(), policy.lead[0] if policy else None))
        self.okapi = Okapi((bm25.tokenize(s) for s, _ in self.sentences), k1=1.5, b=0.75)

    def top(self, query: str) -> tuple[str, str | None]:
        scores = self.okapi.scores(set(bm25.tokenize(query)))
        best = max(range(len(scores)), key=scores.__getitem__)
        return self.sentences[best] if scores[best] > 0 else ("", None)


def search_visible(base: kb.KnowledgeBase, search: SentenceSearch, text: str) -> str:
    sentence, lead = search.top(text)
    return sentence + (f"\n牵头单位：{base.departments[lead].name}" if lead else "")


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def share(key: str) -> float | None:
        values = [r[key] for r in rows if key in r]
        return round(100 * sum(values) / len(values), 1) if values else None

    lengths = [r["length"] for r in rows if "fact" in r or "honest" in r]
    return {
        "cases": len(rows),
        "fact_in_reply": share("fact"), "fact_first_160": share("fact_first"), "lead_department": share("lead"),
        "no_fact_honest": share("honest"),
        "median_length": statistics.median(lengths) if lengths else None,
        "median_departments": statistics.median([r["departments"] for r in rows]) if rows else None,
    }


async def run(agent: Any, base: kb.KnowledgeBase, questions: list[dict[str, Any]],
              short: list[dict[str, Any]]) -> dict[str, Any]:
    names, seeds = department_names(base), seed_text()
    search = SentenceSearch(base)
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    misses = []
    parse_ms, rank_ms = [], []
    for case in questions:
        turns = case.get("turns") or [case["text"]]
        visible, actions, topic, messages = await replay(agent, turns)
        row = judge(case, visible, names, seeds)
        row["id"], row["category"] = case["id"], case["category"]
        ours.append(row)
        by_category[case["category"]].append(row)
        if not (row.get("fact_first", row.get("honest")) and row["lead"]):
            misses.append({"id": case["id"], "turns": turns, "expected": case.get("fact") or "no_fact",
                           "lead": case.get("lead"), "visible": visible, "actions": actions,
                           "unit": answered_unit(messages), "split": case.get("split")})
        theirs.append(judge(case, search_visible(base, search, turns[-1]), names, seeds))
        start = time.perf_counter()
        parsed = await agent.parse_message(turns[-1])
        parse_ms.append(1000 * (time.perf_counter() - start))
        routed = base.topic(parsed["intent"]["name"]) or base.topic(topic)
        if routed:
            start = time.perf_counter()
            answers.answer(base, routed, parsed.get("text") or turns[-1], turns[-1], entities=parsed.get("entities"))
            rank_ms.append(1000 * (time.perf_counter() - start))
    outcomes: Counter[str] = Counter()
    short_rows = []
    for case in short:
        turns = ([case["context"]] if case.get("context") else []) + [case["text"]]
        visible, actions, _, messages = await replay(agent, turns)
        outcome = short_outcome(case, actions, messages)
        outcomes[outcome] += 1
        short_rows.append({"id": case["id"], "turns": turns, "outcome": outcome, "visible": visible[:120]})
    good = outcomes["answer"] + outcomes["ask_back"]
    return {
        "assistant": summarize(ours), "search_box": summarize(theirs),
        "by_category": {c: summarize(r) for c, r in sorted(by_category.items())},
        "short": {"cases": len(short), "answer_or_ask_back": round(100 * good / len(short), 1) if short else None,
                  "bad": sum(outcomes[k] for k in ("out_of_scope", "goodbye", "handoff")), "outcomes": dict(outcomes)},
        "latency_ms": {"parse_p50": round(percentile(parse_ms, 0.5), 1), "parse_p95": round(percentile(parse_ms, 0.95), 1),
                       "rank_p50": round(percentile(rank_ms, 0.5), 1) if rank_ms else None,
                       "rank_p95": round(percentile(rank_ms, 0.95), 1) if rank_ms else None},
        "misses": misses, "short_rows": short_rows,
    }


def _cell(value: Any) -> str:
    return "–" if value is None else f"{value}"


def table(result: dict[str, Any], split: str) -> str:
    ours, theirs = result["assistant"], result["search_box"]
    keys = [("fact_in_reply", "fact in reply %"), ("fact_first_160", "fact in first 160 chars %"),
            ("lead_department", "correct lead department %"), ("no_fact_honest", "no_fact said plainly %"),
            ("median_length", "median visible length (chars)"), ("median_departments", "departments named (median)")]
    lines = [f"# Answer benchmark ({split}: {ours['cases']} questions, {result['short']['cases']} short messages)", "",
             "| | assistant | search box (BM25 over seed sentences) |", "|---|---|---|"]
    lines += [f"| {label} | {_cell(ours[k])} | {_cell(theirs[k])} |" for k, label in keys]
    short = result["short"]
    lines += ["", f"Short messages: {short['answer_or_ask_back']}% answered on topic or asked back; "
                  f"{short['bad']} out of scope / goodbye / complaint; outcomes {short['outcomes']}", "",
              f"Latency (ms): {result['latency_ms']}", "", "| category | cases | fact first 160 % | lead % | honest % |",
              "|---|---|---|---|---|"]
    for category, s in result["by_category"].items():
        lines.append(f"| {category} | {s['cases']} | {_cell(s['fact_first_160'])} | {_cell(s['lead_department'])} | "
                     f"{_cell(s['no_fact_honest'])} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "zhuqi.tar.gz")
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "answers" / "bench.yml")
    parser.add_argument("--split", choices=["tune", "holdout", "all"], default="all")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "answers")
    args = parser.parse_args()
    quiet_logs()
    from rasa.core.agent import Agent

    data = yaml.safe_load(args.data.read_text(encoding="utf-8"))

    def chosen(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if args.split == "all" or r.get("split") == args.split]

    with action_server(free_port()) as endpoint:
        agent = Agent.load(str(args.model), action_endpoint=endpoint)
        quiet_logs()
        result = asyncio.run(run(agent, kb.load(), chosen(data["questions"]), chosen(data.get("short", []))))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    report = table(result, args.split)
    (args.out / "report.md").write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
