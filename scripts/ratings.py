"""Count the widget's 好差评 ratings per department and per topic (`make ratings`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actions import kb  # noqa: E402
from channels.store import RATING_LEVELS, store_for  # noqa: E402


def table(counts: dict[str, dict[str, int]], names: dict[str, str], title: str) -> str:
    lines = [f"| {title} | " + " | ".join(RATING_LEVELS) + " | 合计 |", "|---" * (len(RATING_LEVELS) + 2) + "|"]
    for key in sorted(counts, key=lambda k: -sum(counts[k].values())):
        row = [counts[key].get(level, 0) for level in RATING_LEVELS]
        lines.append(f"| {names.get(key, key)} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="SQLAlchemy URL (default $DATABASE_URL or var/channels.db)")
    args = parser.parse_args()
    store, base = store_for(args.database), kb.load()
    departments = {d.id: d.name for d in base.departments.values()}
    topics = {t.id: t.title for t in base.topics.values()}
    print(table(store.rating_counts("department"), departments, "牵头部门"))
    print()
    print(table(store.rating_counts("topic"), topics, "主题"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
