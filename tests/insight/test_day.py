"""The scripted day (tests/insight/day.py) through Rasa's SQLTrackerStore, the sync and every
report table, on SQLite and on PostgreSQL: exact counts, incremental syncs, the department
filter, and no phone number anywhere in the insight tables."""

from __future__ import annotations

import threading
from dataclasses import astuple
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from insight import tables
from insight.sources import Filters, Sources
from insight.store import InsightStore, conversations, cursor, turns
from insight.sync import sync
from insight.tracker import GAP_WAIT_SECONDS, TrackerStoreError, events
from tests.insight import day
from tests.insight.rasa_events import Conversation
from tests.insight.writer import write


def rows(found: list) -> list[tuple]:
    return [astuple(row) for row in found]


def shape(store: InsightStore, key_of: dict[str, str]) -> list[tuple]:
    """The stored turns as (sender, kind, outcome, topic, department), in time order."""
    return [(key_of[t.conversation], t.kind, t.outcome, t.topic, t.department) for t in store.turns()]


def senders(store: InsightStore) -> dict[str, str]:
    names = {s for s, *_ in day.TURNS_PART_ONE + day.TURNS_PART_TWO}
    return {store.key(name): name for name in names}


@pytest.fixture
def whole_day(tracker_url: str, database_url: str, store: InsightStore, monkeypatch: pytest.MonkeyPatch) -> Sources:
    conversations_ = day.part_one()
    write(tracker_url, list(conversations_.values()))
    write(tracker_url, day.part_two(conversations_))
    day.cases_and_ratings(database_url, monkeypatch)
    sync(tracker_url, store)
    return Sources.of(database_url)


def test_every_table_of_the_scripted_day(whole_day: Sources, store: InsightStore) -> None:
    # the evening's turns come before the WeCom question at 23:59:30 and its follow-up after midnight
    assert shape(store, senders(store)) == day.TURNS_PART_ONE[:-2] + day.TURNS_PART_TWO + day.TURNS_PART_ONE[-2:]
    assert rows(tables.daily(whole_day)) == day.DAILY
    assert rows(tables.topics(whole_day)) == day.TOPICS
    assert rows(tables.outcomes(whole_day)) == day.OUTCOMES
    assert rows(tables.ratings(whole_day)) == day.RATINGS
    assert rows(tables.ratings_weekly(whole_day)) == day.RATINGS_WEEKLY
    assert rows(tables.case_table(whole_day, target=24.0, now=day.NOW)) == day.CASES
    assert rows(tables.followups(whole_day)) == day.FOLLOWUPS
    assert rows(tables.followup_cases(whole_day)) == day.FOLLOWUP_CASES


def test_turns_are_in_time_order_with_their_unit_model_and_masked_text(whole_day: Sources, store: InsightStore) -> None:
    found = store.turns()
    assert [t.at for t in found] == sorted(t.at for t in found)
    assert all(t.model_id == "08c8b0a8e55e422494048adb3f71bf3d" for t in found)
    first = found[0]
    assert (first.text, first.intent, first.confidence, first.unit, first.aspect, first.channel) == (
        "开公司最快多久能拿到执照", "company_opening", 0.94, "p2023_002_1", "time", "rest")
    assert first.day == day.DAY and first.kb_version is None  # the card carries no KB version yet
    phone = next(t for t in found if t.topic == "first_loan_renewal")
    assert (phone.unit, phone.missing, phone.department) == (None, "phone", "jinrong")
    labour = next(t for t in found if t.outcome == "handed_over" and t.topic == "labour_dispute")
    assert (labour.unit, labour.department, labour.handoff_reason) == ("p2023_069_1", "renshe", "needs_person")
    assert [t.day for t in found if t.channel == "wecom"] == [day.DAY, day.NEXT]  # 23:59:30 and 00:00:30, UTC+8


def test_a_second_sync_reads_only_the_new_events(tracker_url: str, store: InsightStore) -> None:
    conversations_ = day.part_one()
    write(tracker_url, list(conversations_.values()))
    source = sa.create_engine(tracker_url)
    with source.connect() as db:
        written = db.execute(sa.select(sa.func.count()).select_from(events)).scalar()
    first = sync(tracker_url, store)
    assert (first.events, first.turns, first.last_event_id) == (written, len(day.TURNS_PART_ONE), written)
    assert rows(tables.daily(Sources.of(store.url))) == day.DAILY_PART_ONE
    again = sync(tracker_url, store)
    assert (again.events, again.turns) == (0, 0)

    write(tracker_url, day.part_two(conversations_))
    with source.connect() as db:
        now_written = db.execute(sa.select(sa.func.count()).select_from(events)).scalar()
    second = sync(tracker_url, store)
    assert (second.events, second.turns) == (now_written - written, len(day.TURNS_PART_TWO))
    key_of = senders(store)
    new = [(key_of[t.conversation], t.kind, t.outcome, t.topic, t.department) for t in store.turns()
           if t.event_id > first.last_event_id]
    assert new == day.TURNS_PART_TWO  # the form still asking, the pause of the open case carried over
    assert rows(tables.daily(Sources.of(store.url))) == day.DAILY
    assert sync(tracker_url, store).turns == 0
    with store.engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(turns)).scalar() == len(day.TURNS_PART_ONE) + len(
            day.TURNS_PART_TWO)
    source.dispose()


def test_a_department_sees_only_its_own(whole_day: Sources, store: InsightStore) -> None:
    assert rows(tables.daily(whole_day, Filters(department="scjg"))) == day.DAILY_SCJG
    assert rows(tables.daily(whole_day, Filters(department="renshe"))) == [(day.D, "socketio", 2, 1, 0, 0, 1)]
    assert tables.daily(whole_day, Filters(department="caizheng")) == []  # named in a passage, not handed the case
    assert [r.topic for r in tables.topics(whole_day, Filters(department="zhujian"))] == ["construction_permit"]
    assert rows(tables.case_table(whole_day, Filters(department="zhujian"), 24.0, day.NOW)) == day.CASES[3:]
    assert {r.department for r in tables.ratings(whole_day, Filters(department="renshe"))} == {"renshe"}
    assert rows(tables.followups(whole_day, Filters(department="fagai"))) == day.FOLLOWUPS[:1]
    assert tables.followup_cases(whole_day, Filters(department="fagai")) == []
    assert {t.department for t in store.turns(department="fagai")} == {"fagai"}
    assert len(store.turns(department="fagai")) == 3  # 转人工, the complaint, the 差评 of a case


def test_the_review_inbox_holds_what_a_person_should_look_at(whole_day: Sources, store: InsightStore) -> None:
    inbox = store.review()
    assert [(t.outcome, t.text) for t in inbox] == [
        ("out_of_scope", "今天天气怎么样"), ("asked_back", "办个证"), ("out_of_scope", "我电话***********，帮我订张机票"),
        ("asked_back", "阿斯顿发噶"), ("out_of_scope", "1"), ("asked_back", "注册商标找谁"),
        ("out_of_scope", "北京的社保怎么交")]
    unsure = store.review(below=0.9)  # and the questions routed with less than 0.9
    assert {(t.text, t.confidence) for t in unsure} - {(t.text, t.confidence) for t in inbox} == {
        ("施工许可多少个工作日", 0.86), ("公司拖欠工资三个月了怎么办", 0.88)}
    assert [t.text for t in store.review(department="zhujian", below=0.9)] == ["施工许可多少个工作日"]


def test_days_and_channels(whole_day: Sources) -> None:
    assert rows(tables.daily(whole_day, Filters(channel="wechat"))) == [(day.D, "wechat", 3, 1, 0, 1, 1)]
    assert rows(tables.daily(whole_day, Filters(start=day.NEXT))) == [(day.N, "wecom", 1, 1, 0, 0, 0)]
    assert rows(tables.outcomes(whole_day, Filters(end=day.DAY))) == day.OUTCOMES[:1]
    of_the_day = Filters(start=day.DAY, end=day.DAY)
    assert rows(tables.case_table(whole_day, of_the_day, 24.0, day.NOW))[0] == day.CASES_OF_THE_DAY_FAGAI
    assert [r.week for r in tables.ratings_weekly(whole_day, of_the_day)] == ["2026-03-02"] * 4
    assert rows(tables.ratings(whole_day, Filters(channel="rest"))) == [day.RATINGS[3]]
    assert tables.daily(whole_day, Filters(start=date(2026, 3, 4))) == []


def test_no_phone_number_reaches_the_insight_tables(whole_day: Sources, store: InsightStore) -> None:
    with store.engine.connect() as db:
        cells = [str(value) for table in (turns, conversations, cursor) for row in db.execute(sa.select(table))
                 for value in row]
    assert not [cell for cell in cells if any(phone in cell for phone in day.PHONES)]
    assert not [cell for cell in cells if "r-handoff" in cell or "o-wechat-owner-1" in cell]  # ids are keyed
    found = store.turns()
    assert all(t.text is None for t in found if t.kind in ("form", "paused", "rating", "control"))
    assert all(t.text is None for t in found if t.topic == "labour_dispute" and t.outcome == "answered")
    texts = [t.text for t in found if t.text]
    assert "我电话***********，帮我订张机票" in texts and "你们办事效率太低了，我要投诉，电话***********" in texts


def _moved_out(tracker_url: str, sender: str) -> list[dict]:
    source = sa.create_engine(tracker_url)
    with source.begin() as db:
        taken = [dict(r._mapping) for r in db.execute(sa.select(events).where(events.c.sender_id == sender))]
        db.execute(events.delete().where(events.c.sender_id == sender))
    source.dispose()
    return taken


def test_rows_committed_out_of_id_order_are_read_when_they_appear(tracker_url: str, store: InsightStore) -> None:
    """Another Rasa process committed lower ids late: the sync asks for the skipped ids again."""
    talks = []
    for number in range(3):
        talk = Conversation(f"r-{number}", "rest", day.at(9 + number))
        talk.decline("今天天气怎么样", at=day.at(9 + number))
        talks.append(talk)
    write(tracker_url, talks)
    late = _moved_out(tracker_url, "r-1")  # not committed yet when the first sync reads
    assert sync(tracker_url, store).turns == 2
    source = sa.create_engine(tracker_url)
    with source.begin() as db:
        db.execute(events.insert(), late)
    source.dispose()
    assert sync(tracker_url, store).turns == 1
    assert len(store.turns()) == 3 and sync(tracker_url, store).turns == 0
    with store.engine.connect() as db:
        assert db.execute(sa.select(cursor.c.value).where(cursor.c.name == "events")).scalar() == "{}"


def test_skipped_ids_are_given_up_after_a_while(tracker_url: str, store: InsightStore) -> None:
    talks = [Conversation(f"r-{n}", "rest", day.at(9)) for n in range(2)]
    for talk in talks:
        talk.decline("今天天气怎么样", at=day.at(9))
    write(tracker_url, talks)
    _moved_out(tracker_url, "r-0")  # a rolled-back transaction's ids: never committed
    sync(tracker_url, store, now=1_000.0)
    with store.engine.connect() as db:
        assert db.execute(sa.select(cursor.c.value).where(cursor.c.name == "events")).scalar() != "{}"
    sync(tracker_url, store, now=1_000.0 + GAP_WAIT_SECONDS + 1)
    with store.engine.connect() as db:
        assert db.execute(sa.select(cursor.c.value).where(cursor.c.name == "events")).scalar() == "{}"


def test_two_syncs_at_once_count_each_turn_once(tracker_url: str, database_url: str) -> None:
    write(tracker_url, list(day.part_one().values()))
    results, errors = [], []

    def run() -> None:
        try:
            results.append(sync(tracker_url, InsightStore(database_url)).turns)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sorted(results) == [0, len(day.TURNS_PART_ONE)]


def test_a_sync_that_lost_the_race_starts_over(tracker_url: str, database_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Another sync stores the turns while this one reads: this one's write is refused by the
    cursor check, and its second attempt finds nothing new."""
    import insight.sync as sync_module

    write(tracker_url, list(day.part_one().values()))
    real_read, other = sync_module.tracker_store.read_after, []

    def read_while_another_syncs(*args, **kwargs):
        if not other:
            other.append(None)  # the other sync reads through here too: once
            other[0] = sync(tracker_url, InsightStore(database_url)).turns
        return real_read(*args, **kwargs)

    monkeypatch.setattr(sync_module.tracker_store, "read_after", read_while_another_syncs)
    assert sync(tracker_url, InsightStore(database_url)).turns == 0
    assert other == [len(day.TURNS_PART_ONE)] and len(InsightStore(database_url).turns()) == len(day.TURNS_PART_ONE)


def test_a_reset_tracker_store_is_refused(tracker_url: str, store: InsightStore) -> None:
    write(tracker_url, list(day.part_one().values()))
    sync(tracker_url, store)
    source = sa.create_engine(tracker_url)
    with source.begin() as db:
        db.execute(events.delete().where(events.c.id > 10))
    source.dispose()
    with pytest.raises(TrackerStoreError, match="reset or replaced"):
        sync(tracker_url, store)


def test_an_empty_tracker_store_gives_empty_tables(tracker_url: str, store: InsightStore) -> None:
    """Before Rasa wrote anything: no events table (PostgreSQL), no file (SQLite, none created)."""
    assert sync(tracker_url, store).turns == 0
    assert not tracker_url.startswith("sqlite") or not Path(tracker_url[len("sqlite:///"):]).exists()
    sources = Sources.of(store.url)
    assert all(function(sources, Filters()) == [] for function, _ in tables.TABLES.values())
