"""A throwaway PostgreSQL server (Debian's postgresql package) for tests of the SQL layers.

Started once per test session on a free local port in a temporary folder, with trust
authentication, and stopped at the end; each test gets a database of its own. As root (CI)
the server runs as the `postgres` user the package creates: PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    def __init__(self, port: int) -> None:
        self.bin = _binaries()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed: make setup installs Debian's postgresql package")
        self.port = port
        self.folder = Path(tempfile.mkdtemp(prefix="zhuqi-pg-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.admin: sa.engine.Engine | None = None

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> "PostgresServer":
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        data = self.folder / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        self.admin = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", future=True)
        return self

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as db:
            db.execute(sa.text(f'CREATE DATABASE "{name}"'))
        return self.url(name)

    def stop(self) -> None:
        if self.admin is not None:
            self.admin.dispose()
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
