"""scripts/insight.py: sync, then CSV tables, `daily` first."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from insight import tables
from scripts import insight as script
from tests.insight import day
from tests.insight.writer import write

DAILY_HEADER = "date,channel,questions,answered,asked_back,out_of_scope,handed_over"


@pytest.fixture
def urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    tracker, database = f"sqlite:///{tmp_path}/tracker.db", f"sqlite:///{tmp_path}/zhuqi.db"
    conversations = day.part_one()
    write(tracker, list(conversations.values()))
    write(tracker, day.part_two(conversations))
    day.cases_and_ratings(database, monkeypatch)
    return tracker, database


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = script.main(list(args), out)
    return code, out.getvalue()


def csv_lines(rows: list[tuple]) -> list[str]:
    return [",".join("" if v is None else str(v) for v in row) for row in rows]


def test_every_table_is_printed_daily_first(urls: tuple[str, str], capsys: pytest.CaptureFixture) -> None:
    tracker, database = urls
    code, out = run("--tracker-db", tracker, "--database", database)
    assert code == 0
    blocks = [block.splitlines() for block in out.split("\n\n")]
    assert [block[0] for block in blocks] == [",".join(tables.columns(row)) for _, row in tables.TABLES.values()]
    assert out.splitlines()[0] == DAILY_HEADER
    assert blocks[0][1:] == csv_lines(day.DAILY)
    assert blocks[1][1:] == csv_lines(day.TOPICS)
    assert "48 new turns" in capsys.readouterr().err
    code, again = run("--tracker-db", tracker, "--database", database, "--table", "daily")
    assert (code, again.splitlines()) == (0, [DAILY_HEADER, *csv_lines(day.DAILY)])  # synced once: no double count


def test_one_department_one_table_some_days(urls: tuple[str, str]) -> None:
    tracker, database = urls
    code, out = run("--tracker-db", tracker, "--database", database, "--table", "daily", "--department", "scjg")
    assert (code, out.splitlines()) == (0, [DAILY_HEADER, *csv_lines(day.DAILY_SCJG)])
    code, out = run("--database", database, "--no-sync", "--table", "daily", "--from", "2026-03-03",
                    "--to", "2026-03-03", "--channel", "wecom")
    assert (code, out.splitlines()) == (0, [DAILY_HEADER, "2026-03-03,wecom,1,1,0,0,0"])
    code, out = run("--database", database, "--no-sync", "--table", "cases", "--target-hours", "0.5")
    assert code == 0 and out.splitlines()[2].startswith("renshe,1,0,0,1,0,0.25,0.25,0.5,0.5,0.5,1,1,1.0")


def test_bad_arguments(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/zhuqi.db"
    with pytest.raises(SystemExit):
        run("--database", database, "--from", "2026-13-01")
    assert run("--database", database, "--no-sync", "--from", "2026-03-02", "--to", "2026-03-01")[0] == 2
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: InMemory\n", encoding="utf-8")
    assert run("--database", database, "--endpoints", str(endpoints))[0] == 1
