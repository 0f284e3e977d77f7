"""Sync the turns from the tracker store, then print the report tables as CSV (`make insight`).

The tracker store is the one endpoints.yml configures (as Rasa reads it; `--endpoints` for
another file, `--tracker-db URL` to name it directly). The turns, cases and ratings are in
`--database URL` (default $DATABASE_URL, else var/cases.db and var/channels.db). Tables come
one after another, a blank line between them, each with its header first; `daily` is the
first. Dates are the district's days (UTC+8), both ends included. No server needs to run.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import astuple
from datetime import date
from functools import partial
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from insight import tables  # noqa: E402
from insight.sources import Filters, Sources  # noqa: E402
from insight.store import InsightStore  # noqa: E402
from insight.sync import sync  # noqa: E402
from insight.tracker import DEFAULT_ENDPOINTS, TrackerStoreError, tracker_url  # noqa: E402


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/insight.py", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", type=_day, help="first day, YYYY-MM-DD (included)")
    parser.add_argument("--to", dest="end", type=_day, help="last day, YYYY-MM-DD (included)")
    parser.add_argument("--department", help="one department's view (a unit id of kb/departments.yml)")
    parser.add_argument("--channel", help="rest, socketio, wechat or wecom")
    parser.add_argument("--table", default="all", choices=[*tables.TABLES, "all"])
    parser.add_argument("--tracker-db", help="SQLAlchemy URL of the tracker store (default: from endpoints.yml)")
    parser.add_argument("--endpoints", type=Path, default=DEFAULT_ENDPOINTS, help="endpoints file (endpoints.yml)")
    parser.add_argument("--database", help="SQLAlchemy URL of turns, cases and ratings (default $DATABASE_URL)")
    parser.add_argument("--target-hours", type=float, help="the case target (default $CASE_TARGET_HOURS or 24)")
    parser.add_argument("--no-sync", action="store_true", help="print from the turns stored, reading no events")
    return parser


def write(out: TextIO, row_class: type, rows: list) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(tables.columns(row_class))
    writer.writerows(["" if value is None else value for value in astuple(row)] for row in rows)


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)
    if args.start and args.end and args.start > args.end:
        print("--from is after --to", file=sys.stderr)
        return 2
    store = InsightStore(args.database)
    if not args.no_sync:
        try:
            synced = sync(args.tracker_db or tracker_url(args.endpoints), store)
        except TrackerStoreError as error:
            print(f"insight: {error}", file=sys.stderr)
            return 1
        print(f"insight: {synced.turns} new turns from {synced.events} events (up to event {synced.last_event_id})",
              file=sys.stderr)
    sources = Sources.of(args.database)
    filters = Filters(args.start, args.end, args.department, args.channel)
    try:
        target = tables.target_hours() if args.target_hours is None else args.target_hours
    except ValueError as error:
        print(f"insight: {error}", file=sys.stderr)
        return 2
    chosen = list(tables.TABLES) if args.table == "all" else [args.table]
    for number, name in enumerate(chosen):
        function, row_class = tables.TABLES[name]
        if name == "cases":
            function = partial(function, target=target)
        if number:
            out.write("\n")
        write(out, row_class, function(sources, filters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
