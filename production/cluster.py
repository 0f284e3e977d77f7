"""The production topology on this machine: `make up-prod` / `make down-prod` / `make status-prod`.

    python -m production.cluster up | down | status | roll

Starts, as the project's own processes with their state under var/prod/: PostgreSQL (every
state: Rasa's tracker store, cases, accounts, the channels' store, ratings), Redis (the
conversation lock, socket.io delivery across replicas), two action servers, two Rasa
replicas, the console and nginx in front — the same services docker-compose.yml's `prod`
profile runs. Everything listens on 127.0.0.1 except nginx (http://localhost:$PROD_PORT,
default 8000). `up` returns once every part answers; `down` stops exactly the processes
whose pid files it wrote; `roll` restarts the Rasa replicas one at a time (a code deploy:
nginx sends traffic to the other one meanwhile).

Settings from the environment: RASA_AUTH_TOKEN (required: Rasa's HTTP API), ACTIONS_SECRET
(else a random one kept in $PROD_DIR/actions-secret), REST_TOKEN (the REST webhook's token,
which production always requires: else a random one kept in $PROD_DIR/rest-token), PROD_PORT,
PROD_HOST (nginx's address, default 0.0.0.0), PROD_REPLICAS (Rasa replicas, default 2),
PROD_ACTION_SERVERS (default 2), PROD_DIR (default var/prod), WECHAT_TOKEN / WECOM_TOKEN (mount
those channels, as `make run` does),
PROD_LOCK_STORE (atomic, the default; stock or none only for scripts/bench_prod.py burst).
Models: the replicas pull models/zhuqi.tar.gz from nginx (Rasa's model server protocol) every
MODEL_PULL_SECONDS (default 10): a new model file reaches every replica without a restart.
"""

from __future__ import annotations

import argparse
import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests
import yaml

from production import nginx_conf

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("VENV", ROOT / ".venv"))
PY = str(VENV / "bin" / "python")
RASA = str(VENV / "bin" / "rasa")
MODEL = ROOT / "models" / "zhuqi.tar.gz"


@dataclass(frozen=True)
class Ports:
    """Every port of the topology; all but `public` on 127.0.0.1."""

    public: int
    base: int  # the others follow it

    @property
    def internal(self) -> int:  # nginx: action servers, model file, the console's API
        return self.base

    @property
    def postgres(self) -> int:
        return self.base + 1

    @property
    def redis(self) -> int:
        return self.base + 2

    @property
    def console(self) -> int:
        return self.base + 3

    def rasa(self, replicas: int) -> list[int]:
        return [self.base + 10 + i for i in range(replicas)]

    def actions(self, servers: int) -> list[int]:
        return [self.base + 30 + i for i in range(servers)]


class Cluster:
    def __init__(self, folder: Path, ports: Ports, replicas: int = 2, action_servers: int = 2,
                 public_host: str = "0.0.0.0") -> None:
        self.folder = folder
        self.ports = ports
        self.replicas = replicas
        self.action_servers = action_servers
        self.public_host = public_host
        self.pids = folder / "pids"
        self.logs = folder / "logs"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    # -- what the processes share ------------------------------------------------------------
    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports.postgres}/zhuqi"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports.redis}/0"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.public}"

    def endpoints(self, actions_secret: str) -> dict:
        from actions import secret

        internal = f"http://127.0.0.1:{self.ports.internal}"
        return {
            "action_endpoint": {"url": f"{internal}/webhook", "headers": secret.headers(secret.checked(actions_secret))},
            "tracker_store": {"type": "SQL", "dialect": "postgresql", "url": "127.0.0.1",
                              "port": self.ports.postgres, "db": "zhuqi", "username": "postgres", "password": ""},
            "models": {"url": f"{internal}/models/{MODEL.name}",
                       "wait_time_between_pulls": int(os.environ.get("MODEL_PULL_SECONDS", "10"))},
            **self.lock_store(),
        }

    def lock_store(self) -> dict:
        """$PROD_LOCK_STORE: atomic (the default), or, only to measure what they lose
        (scripts/bench_prod.py burst), stock (Rasa's RedisLockStore) or none (Rasa's in-memory
        lock, one per replica)."""
        choice = os.environ.get("PROD_LOCK_STORE", "atomic")
        redis_at = {"port": self.ports.redis, "db": 0}
        stores = {"atomic": {"type": "production.lock_store.AtomicRedisLockStore", "host": "127.0.0.1",
                             **redis_at, "key_prefix": "zhuqi"},
                  "stock": {"type": "redis", "url": "127.0.0.1", **redis_at, "key_prefix": "zhuqistock"}}
        if choice not in (*stores, "none"):
            raise SystemExit(f"PROD_LOCK_STORE must be atomic, stock or none, not {choice!r}")
        return {"lock_store": stores[choice]} if choice in stores else {}

    def environment(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
               "RASA_TELEMETRY_ENABLED": os.environ.get("RASA_TELEMETRY_ENABLED", "false"),
               "DATABASE_URL": self.database_url, "SOCKETIO_REDIS_URL": self.redis_url,
               # Rasa's SQL tracker store reads these when it connects (postgresql)
               "SQL_POOL_SIZE": os.environ.get("SQL_POOL_SIZE", "20")}
        env.update(extra)
        return env

    # -- processes ---------------------------------------------------------------------------
    def spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> int:
        """Start a process in its own session (so `down` can stop it and its children)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env or self.environment(), stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        (self.pids / f"{name}.pid").write_text(str(process.pid))
        return process.pid

    def running(self, name: str) -> int | None:
        try:
            pid = int((self.pids / f"{name}.pid").read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def stop(self, name: str, timeout: float = 20.0) -> None:
        pid = self.running(name)
        if pid:
            with_signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and alive(pid):
                time.sleep(0.2)
            if alive(pid):
                with_signal(pid, signal.SIGKILL)
        (self.pids / f"{name}.pid").unlink(missing_ok=True)

    # -- the parts ---------------------------------------------------------------------------
    def postgres_binaries(self) -> Path:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise SystemExit("PostgreSQL is not installed (make system-packages installs postgresql)")
        return Path(found[-1]).parent

    def start_postgres(self) -> None:
        """A server of the project's own; PostgreSQL refuses root, so as root it runs as postgres."""
        binaries = self.postgres_binaries()
        data = self.folder / "pg"
        socket_dir = self.folder / "pg-socket"
        if self.as_postgres:
            for path in (self.folder, socket_dir):
                path.mkdir(parents=True, exist_ok=True)
                shutil.chown(path, "postgres")
        if not (data / "PG_VERSION").exists():
            subprocess.run([*self.as_postgres, str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8", "--locale=C"], check=True, capture_output=True)
        if not self.postgres_ready():
            subprocess.run([*self.as_postgres, str(binaries / "pg_ctl"), "-D", str(data), "-l",
                            str(self.folder / "postgres.log"), "-w", "-o",
                            f"-p {self.ports.postgres} -k {socket_dir} -c listen_addresses=127.0.0.1 "
                            "-c max_connections=200", "start"], check=True, capture_output=True, timeout=60)
        import sqlalchemy as sa

        admin = sa.create_engine(f"postgresql://postgres@127.0.0.1:{self.ports.postgres}/postgres",
                                 isolation_level="AUTOCOMMIT", future=True)
        with admin.connect() as connection:
            if not connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname='zhuqi'")).first():
                connection.execute(sa.text("CREATE DATABASE zhuqi"))
        admin.dispose()

    def postgres_ready(self) -> bool:
        result = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(self.ports.postgres)],
                                capture_output=True)
        return result.returncode == 0

    def stop_postgres(self) -> None:
        data = self.folder / "pg"
        if (data / "postmaster.pid").exists():
            subprocess.run([*self.as_postgres, str(self.postgres_binaries() / "pg_ctl"), "-D", str(data), "-m",
                            "fast", "-w", "stop"], capture_output=True, timeout=60)

    def start_redis(self) -> None:
        if not self.running("redis"):
            self.spawn("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(self.ports.redis),
                                 "--save", "", "--appendonly", "no", "--protected-mode", "yes"])
        wait_for("redis", lambda: redis_ping(self.ports.redis))

    def start_actions(self, actions_secret: str) -> None:
        for index, port in enumerate(self.ports.actions(self.action_servers)):
            name = f"actions-{index + 1}"
            if not self.running(name):
                self.spawn(name, [PY, "-m", "actions.server", "--host", "127.0.0.1", "--port", str(port)],
                           self.environment(ACTIONS_SECRET=actions_secret))
        for port in self.ports.actions(self.action_servers):
            wait_for(f"action server :{port}", lambda port=port: http_ok(f"http://127.0.0.1:{port}/health"))

    def write_nginx(self) -> Path:
        topology = nginx_conf.here(self.folder, self.ports.public, self.ports.internal,
                                   self.ports.rasa(self.replicas), self.ports.actions(self.action_servers),
                                   [self.ports.console], public_host=self.public_host)
        (self.folder / "nginx-temp").mkdir(parents=True, exist_ok=True)
        path = self.folder / "nginx.conf"
        path.write_text(nginx_conf.render(topology), encoding="utf-8")
        return path

    def start_nginx(self) -> None:
        conf = self.write_nginx()
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        subprocess.run([nginx, "-t", "-q", "-c", str(conf), "-p", str(self.folder)], check=True)
        pid_file = self.folder / "nginx.pid"
        if pid_file.exists() and alive(int(pid_file.read_text() or 0)):
            subprocess.run([nginx, "-s", "reload", "-c", str(conf), "-p", str(self.folder)], check=True)
        else:
            subprocess.run([nginx, "-c", str(conf), "-p", str(self.folder)], check=True)
        (self.pids / "nginx.pid").write_text(pid_file.read_text().strip())
        wait_for("nginx", lambda: http_ok(f"http://127.0.0.1:{self.ports.internal}/models/{MODEL.name}", "HEAD"))

    def credentials(self) -> Path:
        path = self.folder / "credentials.yml"
        text = (ROOT / "credentials.yml").read_text(encoding="utf-8")
        if os.environ.get("WECHAT_TOKEN"):
            text += "channels.wechat.WeChatInput:\n"
        if os.environ.get("WECOM_TOKEN"):
            text += "channels.wecom.WeComInput:\n"
        path.write_text(text, encoding="utf-8")
        return path

    def start_replica(self, index: int, token: str, endpoints: Path, credentials: Path) -> None:
        port = self.ports.rasa(self.replicas)[index]
        name = f"rasa-{index + 1}"
        if not self.running(name):
            self.spawn(name, [RASA, "run", "--port", str(port), "--interface", "127.0.0.1", "--enable-api",
                              "--auth-token", token, "--credentials", str(credentials),
                              "--endpoints", str(endpoints), "--model", str(MODEL.parent)],
                       self.environment(REST_TOKEN=self.rest_token(), REST_TOKEN_REQUIRED="1"))

    def replica_ready(self, port: int, token: str) -> bool:
        try:
            status = requests.get(f"http://127.0.0.1:{port}/status", params={"token": token}, timeout=3)
            return status.ok and bool(status.json().get("model_id"))
        except (requests.RequestException, ValueError):
            return False

    def up(self) -> None:
        token = os.environ.get("RASA_AUTH_TOKEN", "").strip()
        if not token:
            raise SystemExit("set RASA_AUTH_TOKEN: Rasa's HTTP API is reachable through nginx, only with it")
        if not MODEL.exists():
            raise SystemExit(f"no model at {MODEL}: run 'make setup' (or 'make train') first")
        self.folder.mkdir(parents=True, exist_ok=True)
        actions_secret = self.actions_secret()
        endpoints = self.folder / "endpoints.yml"
        endpoints.touch(mode=0o600)
        endpoints.write_text(yaml.safe_dump(self.endpoints(actions_secret), sort_keys=False), encoding="utf-8")
        self.start_postgres()
        self.start_redis()
        self.start_actions(actions_secret)
        self.start_nginx()
        credentials = self.credentials()
        for index in range(self.replicas):
            self.start_replica(index, token, endpoints, credentials)
        if not self.running("console"):
            self.spawn("console", [PY, "-m", "console", "--host", "127.0.0.1", "--port", str(self.ports.console)],
                       self.environment(RASA_URL=f"http://127.0.0.1:{self.ports.internal}", RASA_AUTH_TOKEN=token,
                                        TRACKER_DB_URL=self.database_url))
        for port in self.ports.rasa(self.replicas):
            wait_for(f"Rasa :{port}", lambda port=port: self.replica_ready(port, token), timeout=300)
        wait_for("console", lambda: http_ok(f"http://127.0.0.1:{self.ports.console}/healthz"))
        print(f"production topology up: {self.url}/ (console), {self.url}/widget/ (widget), "
              f"{self.url}/webhooks/rest/webhook (Authorization: Bearer $REST_TOKEN"
              f"{'' if os.environ.get('REST_TOKEN', '').strip() else ', kept in ' + str(self.folder / 'rest-token')}); "
              f"logs in {self.logs}", file=sys.stderr)

    def actions_secret(self) -> str:
        """$ACTIONS_SECRET, else one kept for this topology (action servers still running
        from an earlier `up` must get the same one)."""
        if os.environ.get("ACTIONS_SECRET"):
            return os.environ["ACTIONS_SECRET"]
        kept = self.folder / "actions-secret"
        if not kept.exists():
            kept.touch(mode=0o600)
            kept.write_text(secrets.token_urlsafe(32))
        return kept.read_text().strip()

    def rest_token(self) -> str:
        """$REST_TOKEN, else one kept for this topology: in production the REST webhook is for
        the district's own systems (the public speaks through the widget and WeChat), so it is
        never open; integrators read it from the file `up` names."""
        if os.environ.get("REST_TOKEN", "").strip():
            return os.environ["REST_TOKEN"].strip()
        kept = self.folder / "rest-token"
        if not kept.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            kept.touch(mode=0o600)
            kept.write_text(secrets.token_urlsafe(32))
        return kept.read_text().strip()

    def roll(self) -> None:
        """Restart the replicas one by one: nginx serves from the other while one loads."""
        token = os.environ.get("RASA_AUTH_TOKEN", "").strip()
        endpoints, credentials = self.folder / "endpoints.yml", self.credentials()
        for index, port in enumerate(self.ports.rasa(self.replicas)):
            self.stop(f"rasa-{index + 1}")
            self.start_replica(index, token, endpoints, credentials)
            wait_for(f"Rasa :{port}", lambda port=port: self.replica_ready(port, token), timeout=300)

    def started(self, prefix: str) -> list[str]:
        """Names of the processes of a kind that an `up` started (whatever PROD_REPLICAS says now)."""
        return sorted(path.stem for path in self.pids.glob(f"{prefix}-*.pid"))

    def down(self) -> None:
        self.stop("console")
        for name in self.started("rasa"):
            self.stop(name)
        pid_file = self.folder / "nginx.pid"
        if pid_file.exists():
            subprocess.run([shutil.which("nginx") or "/usr/sbin/nginx", "-s", "quit", "-c",
                            str(self.folder / "nginx.conf"), "-p", str(self.folder)], capture_output=True)
            wait_gone(self.pids / "nginx.pid")
        for name in self.started("actions"):
            self.stop(name)
        self.stop("redis")
        self.stop_postgres()

    def status(self) -> dict[str, int | None]:
        names = ["redis", "nginx", "console",
                 *sorted({*self.started("actions"), *(f"actions-{i + 1}" for i in range(self.action_servers))}),
                 *sorted({*self.started("rasa"), *(f"rasa-{i + 1}" for i in range(self.replicas))})]
        found = {name: self.running(name) for name in names}
        found["postgres"] = 1 if self.postgres_ready() else None
        return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie of ours is gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def with_signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def wait_gone(pid_file: Path, timeout: float = 20.0) -> None:
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.2)
    pid_file.unlink(missing_ok=True)


def http_ok(url: str, method: str = "GET") -> bool:
    try:
        return requests.request(method, url, timeout=3).ok
    except requests.RequestException:
        return False


def redis_ping(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def wait_for(what: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise SystemExit(f"{what} did not answer within {timeout:.0f} s (logs: var/prod/logs/)")


def from_environment() -> Cluster:
    folder = Path(os.environ.get("PROD_DIR", ROOT / "var" / "prod")).resolve()
    ports = Ports(public=int(os.environ.get("PROD_PORT", "8000")), base=int(os.environ.get("PROD_BASE_PORT", "8100")))
    return Cluster(folder, ports, replicas=int(os.environ.get("PROD_REPLICAS", "2")),
                   action_servers=int(os.environ.get("PROD_ACTION_SERVERS", "2")),
                   public_host=os.environ.get("PROD_HOST", "0.0.0.0"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m production.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "roll"])
    args = parser.parse_args(argv)
    cluster = from_environment()
    if args.command == "up":
        cluster.up()
    elif args.command == "down":
        cluster.down()
    elif args.command == "roll":
        cluster.roll()
    else:
        for name, pid in cluster.status().items():
            print(f"{name:12} {'up' if pid else 'down'}{f' (pid {pid})' if pid and pid > 1 else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
