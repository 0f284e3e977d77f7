"""cases/schema.engine_for through a PostgreSQL restart: the cases, accounts and channels'
stores (all opened by it) wait for the server to come back instead of failing the request."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from cases import schema


@pytest.fixture()
def own_server():
    """A server of this test's own: restarting the session's would break its other users."""
    from tests.e2e.servers import free_port
    from tests.postgres import PostgresServer

    server = PostgresServer(free_port()).start()
    yield server
    server.stop()


def pg_ctl(server, *args: str) -> None:
    server._run(str(server.bin / "pg_ctl"), "-D", str(server.folder / "data"), *args)


def test_a_query_during_a_restart_waits_for_the_server(own_server) -> None:
    engine = schema.engine_for(own_server.new_database())
    with engine.connect() as db:
        assert db.execute(sa.text("SELECT 1")).scalar() == 1  # a pooled connection, then the restart
    pg_ctl(own_server, "-m", "fast", "-w", "stop")
    back = threading.Timer(1.0, pg_ctl, (own_server, "-l", str(own_server.folder / "log"), "-w", "-o",
                                         f"-p {own_server.port} -k {own_server.folder} -c listen_addresses=127.0.0.1",
                                         "start"))
    back.start()
    began = time.monotonic()
    try:
        with engine.connect() as db:  # the pooled one is dead (pre-ping), new ones are refused for ~1 s
            assert db.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        back.join()
    assert 0.9 < time.monotonic() - began < schema.CONNECT_RETRY_SECONDS + 1
    engine.dispose()


def test_a_server_that_stays_down_still_fails(own_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "CONNECT_RETRY_SECONDS", 0.5)
    engine = schema.engine_for(own_server.new_database())
    pg_ctl(own_server, "-m", "fast", "-w", "stop")
    began = time.monotonic()
    with pytest.raises(sa.exc.OperationalError):
        with engine.connect():
            pass
    assert time.monotonic() - began < 2.0
    pg_ctl(own_server, "-l", str(own_server.folder / "log"), "-w", "-o",
           f"-p {own_server.port} -k {own_server.folder} -c listen_addresses=127.0.0.1", "start")
