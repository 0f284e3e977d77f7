"""One assistant, started as `make run` starts it, shared by the end-to-end tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.e2e.servers import Servers, running


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with running(tmp_path_factory.mktemp("servers")) as started:
        yield started
