"""Shared fixtures: the real knowledge base, a copy to break, trackers and a dispatcher."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import kb

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "zhuqi.tar.gz"


@pytest.fixture(scope="session")
def knowledge_base() -> kb.KnowledgeBase:
    return kb.load()


@pytest.fixture
def mini_kb(tmp_path: Path) -> Path:
    """A copy of kb/ that a test may edit to check the validator catches a problem."""
    target = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", target)
    return target


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


TrackerFactory = Callable[..., Tracker]


@pytest.fixture
def tracker_factory() -> TrackerFactory:
    """A tracker whose latest message has the given intent, entities and ranking."""

    def make(intent: str | None = None, text: str = "", entities: list[dict[str, Any]] | None = None,
             slots: dict[str, Any] | None = None, ranking: list[dict[str, Any]] | None = None) -> Tracker:
        latest = {
            "text": text,
            "intent": {"name": intent, "confidence": 0.9} if intent else {},
            "entities": entities or [],
            "intent_ranking": ranking or [],
        }
        return Tracker("test-user", slots or {}, latest, [], False, None, {}, "action_listen")

    return make


@pytest.fixture(scope="session")
def agent():
    """The trained model (models/zhuqi.tar.gz), loaded once for every test that parses."""
    if not MODEL.exists():
        pytest.fail(f"no model at {MODEL}: run make train")
    from rasa.core.agent import Agent

    return Agent.load(str(MODEL))


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session (tests/postgres.py)."""
    from tests.e2e.servers import free_port
    from tests.postgres import PostgresServer

    server = PostgresServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database for a test of the SQL layers: a SQLite file, then PostgreSQL (the same
    code must run on both: SQLite by default, PostgreSQL from $DATABASE_URL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cases.db"
    return request.getfixturevalue("postgres").new_database()
