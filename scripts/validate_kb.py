"""Check the knowledge base: schema, references, and that every quote is in its source.

`make kb-validate` runs this; it exits non-zero with one line per problem. The quote
checks are what keep invented facts out: a figure, time limit or name the assistant
shows must be an exact passage (white space aside) of the seed it cites.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actions.kb import DEFAULT_DIR, KnowledgeBase, Quote, load  # noqa: E402

PAGE_NOISE = re.compile(r"^(## 重庆市渝中区人民政府行政规范性文件|---)\s*$", re.M)
EXPECTED_ITEMS = {"渝中府办〔2021〕16号": 52, "渝中府办〔2023〕32号": 90}
DEPARTMENT_KINDS = {"district", "municipal", "court", "utility", "group", "other"}
CHANNEL_KINDS = {"online", "window", "centre", "station", "system", "team"}
ASPECTS = {"time", "materials"}


def squash(text: str) -> str:
    """Drop page furniture and all white space, so quotes match across line breaks."""
    return re.sub(r"\s+", "", PAGE_NOISE.sub("", text))


def read_sources(kb_dir: Path) -> dict[str, str]:
    return {p.name: squash(p.read_text(encoding="utf-8")) for p in (kb_dir / "sources").glob("*.txt")}


def check_quote(kb: KnowledgeBase, sources: dict[str, str], quote: Quote, where: str) -> list[str]:
    problems = []
    if quote.policy:
        policy = kb.policies.get(quote.policy)
        if policy is None:
            return [f"{where}: unknown policy {quote.policy}"]
        if squash(quote.text) not in squash(policy.text):
            problems.append(f"{where}: quote not in {quote.policy}: {quote.text}")
    elif quote.file not in sources or quote.file not in kb.documents:
        problems.append(f"{where}: {quote.file} is not a seed listed in kb/documents.yml")
    elif squash(quote.text) not in sources[quote.file]:
        problems.append(f"{where}: quote not in {quote.file}: {quote.text}")
    problems += [f"{where}: unknown aspect {a}" for a in quote.about if a not in ASPECTS]
    return problems


def check_policies(kb: KnowledgeBase, sources: dict[str, str]) -> list[str]:
    problems = []
    counts = Counter(p.doc for p in kb.policies.values())
    for doc, expected in EXPECTED_ITEMS.items():
        items = sorted(p.item for p in kb.policies.values() if p.doc == doc)
        if items != list(range(1, expected + 1)):
            problems.append(f"{doc}: items {counts[doc]} found, expected 1..{expected}")
    for policy in kb.policies.values():
        where = f"policy {policy.id}"
        if policy.source.get("file") not in sources:
            problems.append(f"{where}: unknown source file {policy.source.get('file')}")
        elif squash(policy.text) not in sources[policy.source["file"]]:
            problems.append(f"{where}: text is not the source's text")
        if not policy.lead:
            problems.append(f"{where}: no lead unit")
        problems += [f"{where}: unknown unit {u}" for u in (*policy.lead, *policy.co) if u not in kb.departments]
    return problems


def check_departments(kb: KnowledgeBase, sources: dict[str, str]) -> list[str]:
    problems = []
    for dept in kb.departments.values():
        where = f"department {dept.id}"
        if dept.kind not in DEPARTMENT_KINDS:
            problems.append(f"{where}: kind {dept.kind!r} not one of {sorted(DEPARTMENT_KINDS)}")
        if dept.source.get("file") not in sources:
            problems.append(f"{where}: unknown source file {dept.source.get('file')}")
        elif squash(dept.name) not in sources[dept.source["file"]]:
            problems.append(f"{where}: name {dept.name} is not in its source {dept.source['file']}")
        for key, value in (dept.contact or {}).items():
            if squash(str(value)) not in sources.get(dept.source.get("file", ""), ""):
                problems.append(f"{where}: contact {key} {value} not in {dept.source.get('file')}")
    return problems


def check_channels(kb: KnowledgeBase, sources: dict[str, str]) -> list[str]:
    problems = []
    for channel in kb.channels.values():
        where = f"channel {channel.id}"
        if channel.kind not in CHANNEL_KINDS:
            problems.append(f"{where}: kind {channel.kind!r} not one of {sorted(CHANNEL_KINDS)}")
        if channel.operator and channel.operator not in kb.departments:
            problems.append(f"{where}: unknown operator {channel.operator}")
        for quote in channel.points:
            problems += check_quote(kb, sources, quote, where)
        cited = "".join(squash(q.text) for q in channel.points)
        problems += [f"{where}: figure {n} in `how` is in none of its quoted points"
                     for n in re.findall(r"\d[\d.@a-z]*", channel.how) if n not in cited]
    for product in kb.products.values():
        problems += [p for q in product.points for p in check_quote(kb, sources, q, f"product {product.id}")]
    return problems


def check_topics(kb: KnowledgeBase, sources: dict[str, str]) -> list[str]:
    problems = []
    for topic in kb.topics.values():
        where = f"topic {topic.id}"
        problems += [f"{where}: unknown unit {u}" for u in (*topic.lead, *topic.co) if u not in kb.departments]
        problems += [f"{where}: unknown channel {c}" for c in topic.channels if c not in kb.channels]
        problems += [f"{where}: unknown product {p}" for p in topic.products if p not in kb.products]
        for quote in (*topic.policies, *topic.points, *filter(None, [topic.lead_source])):
            problems += check_quote(kb, sources, quote, where)
        if not topic.channels:
            problems.append(f"{where}: no channel")
        if not topic.keywords:
            problems.append(f"{where}: no keywords")
        problems += _check_lead(kb, topic, where)
    return problems


def _check_lead(kb: KnowledgeBase, topic, where: str) -> list[str]:
    """The lead must be the first item's lead unit, or named by the topic's lead_source."""
    if topic.lead_source:
        names = [kb.departments[u].name for u in topic.lead if u in kb.departments]
        missing = [n for n in names if squash(n) not in squash(topic.lead_source.text)]
        return [f"{where}: lead {m} not named in lead_source" for m in missing]
    if not topic.policies or not topic.policies[0].policy:
        return [f"{where}: needs a first policy item or a lead_source"]
    first = kb.policies.get(topic.policies[0].policy)
    if first and not set(topic.lead) <= set(first.lead):
        return [f"{where}: lead {list(topic.lead)} is not the lead of {first.id} {list(first.lead)}"]
    return []


def check_aliases(kb: KnowledgeBase) -> list[str]:
    """An alias may name one record, or the synonym mapping from text to id is ambiguous."""
    problems = []
    tables = {
        "department": {d.id: (d.name, d.full_name, *d.aliases) for d in kb.departments.values() if d.kind != "group"},
        "channel": {c.id: (c.name, *c.aliases) for c in kb.channels.values()},
        "product": {p.id: (p.name, *p.aliases) for p in kb.products.values()},
    }
    owner: dict[str, str] = {}  # one namespace: synonyms map text to an id whatever the type
    for entity, records in tables.items():
        for record_id, names in records.items():
            for name in filter(None, names):
                key = name.lower()
                if owner.setdefault(key, record_id) != record_id:
                    problems.append(f"{entity} alias {name!r} names both {owner[key]} and {record_id}")
    return problems


def problems(kb_dir: Path = DEFAULT_DIR) -> list[str]:
    """Every problem found in the knowledge base at kb_dir (empty when it is sound)."""
    try:
        kb = load(kb_dir)
    except (KeyError, TypeError, ValueError, OSError) as error:  # yaml errors are ValueErrors
        return [f"malformed or missing record: {error!r}"]
    sources = read_sources(kb_dir)
    found = [f"document {f} missing from kb/sources" for f in kb.documents if f not in sources]
    for check in (check_policies, check_departments, check_channels, check_topics):
        found += check(kb, sources)
    return found + check_aliases(kb)


def main() -> int:
    kb_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    found = problems(kb_dir)
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        kb = load(kb_dir)
        print(f"kb ok: {len(kb.departments)} units, {len(kb.policies)} policy items, "
              f"{len(kb.channels)} channels, {len(kb.products)} products, {len(kb.topics)} topics")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
