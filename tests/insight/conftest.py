"""Fixtures: a tracker store beside each test's database, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from insight.store import InsightStore


@pytest.fixture
def tracker_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Rasa's tracker store for the test, on the same kind of database as `database_url`
    (tests/conftest.py: a SQLite file, then a throwaway PostgreSQL database)."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/tracker.db"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def store(database_url: str) -> InsightStore:
    return InsightStore(database_url)
