"""What scripts/bench_prod.py reads from the running topology, and how it steers it.

- `tracker_check`: every conversation's events in PostgreSQL (`events` of db zhuqi), counted
  against what the clients sent and were answered;
- `memory`: RSS (and PSS, with children) of every process of the topology, from /proc;
- `Topology`: down/up with a given number of replicas and lock store (and the bench's
  WeChat account), and the faults: kill -9 a replica, restart PostgreSQL, stop Redis or the
  action servers;
- `socket_connections`: connections to each replica (which one holds a socket that came
  through nginx).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import requests
import sqlalchemy as sa

from production.bench_clients import Sent
from production.bench_wechat import WECHAT
from production.cluster import PY, ROOT, Cluster, from_environment


# -- trackers ---------------------------------------------------------------------------------
def _common_subsequence(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (order kept) of a and b."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


# How a channel may name the conversation of a sender in the tracker store: WeChat's is
# `wechat:<OpenID>` (channels/wechat.py), the others' the sender id itself.
PREFIXES = ("", "wechat:", "wecom:")


def tracker_events(database_url: str, senders: Iterable[str]) -> dict[str, list[tuple[str, str, bool, str]]]:
    """(type, text, has a custom payload, message_id) of the user, bot, pause and resume events
    of each sender's conversation, in the tracker store's own order (timestamp, then id)."""
    engine = sa.create_engine(database_url, future=True, pool_pre_ping=True)
    senders = list(senders)
    stored: dict[str, list[tuple[str, str, bool, str]]] = {}
    query = sa.text("SELECT sender_id, type_name, data FROM events WHERE sender_id = ANY(:ids) AND "
                    "type_name IN ('user', 'bot', 'pause', 'resume') ORDER BY timestamp, id")
    try:
        with engine.connect() as connection:
            ids = [prefix + s for s in senders for prefix in PREFIXES]
            for sender, kind, data in connection.execute(query, {"ids": ids}):
                event = json.loads(data)
                custom = (event.get("data") or {}).get("custom") is not None
                stored.setdefault(sender, []).append((kind, event.get("text") or "", custom,
                                                      str(event.get("message_id") or "")))
    finally:
        engine.dispose()
    return {s: next((stored[p + s] for p in PREFIXES if p + s in stored), []) for s in senders}


def settle(database_url: str, sent: list[Sent], timeout: float = 30.0) -> float:
    """Wait until the trackers stop growing (a replica saves a turn after it has sent the
    answer, and a loaded one may be seconds behind); the seconds waited."""
    began, before = time.monotonic(), -1
    conversations = {m.conversation for m in sent}
    while time.monotonic() - began < timeout:
        now = sum(len(e) for e in tracker_events(database_url, conversations).values())
        if now == before:
            break
        before = now
        time.sleep(1.5)
    return time.monotonic() - began


def _pairs(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of a and b."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def correlate_sockets(database_url: str, users: list[Any]) -> int:
    """Settle each socket.io message's outcome from its conversation's tracker; returns how many
    changed. A message's user turn is the one carrying its message_id (the widget's protocol,
    channels/redelivery.py; without ids, texts are matched in order, which mistakes one 「在哪办」
    for another). The answer to a message is the first bot event after its user turn; the bot
    events' emits (a text, a card) are matched in order to the bot_uttered events the client
    received, so its latency is when that emit arrived. A message with no user turn was not
    processed; a turn whose answer never arrived was lost."""
    from production.bench_clients import classify

    sockets = [u for u in users if getattr(u, "received", None) is not None and u.sent]
    events = tracker_events(database_url, {u.sender for u in sockets} | {m.conversation for u in sockets for m in u.sent})
    changed = 0
    for user in sockets:
        for conversation in {m.conversation for m in user.sent}:
            mine = [m for m in user.sent if m.conversation == conversation]
            stream = events[conversation]
            emits, first_emit, turns, ids = [], {}, [], {}  # emits: (kind, text); first_emit: turn -> emit index
            for kind, text, custom, message_id in stream:
                if kind == "user":
                    ids.setdefault(message_id, len(turns))
                    turns.append(text)
                elif kind == "bot" and turns:
                    first_emit.setdefault(len(turns) - 1, len(emits))
                    emits += ([("text", text)] if text else []) + ([("custom", "")] if custom or not text else [])
            received = [(k, t) for _, k, t in user.received]
            delivered = {e: r for e, r in _pairs([f"{k}:{t}" for k, t in emits], [f"{k}:{t}" for k, t in received])}
            if all(m.message_id for m in mine):
                processed = {n: ids[m.message_id] for n, m in enumerate(mine) if m.message_id in ids}
            else:
                processed = dict(_pairs([m.text for m in mine], turns))
            for number, message in enumerate(mine):
                before = (message.outcome, message.kind)
                turn = processed.get(number)
                if turn is None:
                    # not processed: lost, unless the client saw an error or the apology, which
                    # tell the user to send it again (a REST 503 counts the same)
                    if message.outcome not in ("error", "apology"):
                        message.outcome, message.kind, message.latency, message.reply = "lost", "no turn in tracker", None, ""
                elif turn not in first_emit:
                    message.outcome, message.kind, message.latency, message.reply = "lost", "no answer in tracker", None, ""
                elif first_emit[turn] not in delivered:
                    message.outcome, message.kind, message.latency, message.reply = "lost", "answer not delivered", None, ""
                else:
                    at = user.received[delivered[first_emit[turn]]][0]
                    kind, text = emits[first_emit[turn]]
                    message.outcome, message.kind, message.reply = classify([text or "[card]"])
                    message.latency = at - message.at
                changed += int((message.outcome, message.kind) != before)
    return changed


def tracker_check(database_url: str, sent: list[Sent], ordered: bool = True) -> dict[str, Any]:
    """Count, per conversation, what the tracker holds against what was sent.

    answered_missing: messages the client got an answer to (not an apology) whose user turn
    is not in the tracker (a lost turn). out_of_order: tracker user turns that do not follow the order sent
    (ordered=False, for messages sent at the same instant, compares as multisets).
    without_bot: user turns not followed by a bot event before the next user turn.
    duplicated: user turns of a message already in the tracker (a resent widget message
    processed twice: the same message_id on two turns).
    """
    by_conversation: dict[str, list[Sent]] = {}
    for message in sent:
        by_conversation.setdefault(message.conversation, []).append(message)
    events = tracker_events(database_url, by_conversation)
    totals = Counter()
    damaged: list[str] = []
    for conversation, messages in by_conversation.items():
        turns = [text for kind, text, _, _ in events[conversation] if kind == "user"]
        answered = [m.text for m in messages if m.outcome == "ok"]  # an apology makes no turn
        every = [m.text for m in messages]
        if ordered:
            missing = len(answered) - _common_subsequence(answered, turns)
            disorder = len(turns) - _common_subsequence(every, turns)
        else:
            missing = sum((Counter(answered) - Counter(turns)).values())
            disorder = sum((Counter(turns) - Counter(every)).values())
        kinds = [kind for kind, _, _, _ in events[conversation]]
        ids = Counter(i for kind, _, _, i in events[conversation] if kind == "user" and i)
        wanted = {m.message_id for m in messages if m.message_id}
        duplicated = sum(n - 1 for i, n in ids.items() if i in wanted)
        without_bot = sum(1 for i, kind in enumerate(kinds) if kind == "user"
                          and "bot" not in kinds[i + 1:next((j for j in range(i + 1, len(kinds))
                                                             if kinds[j] == "user"), len(kinds))])
        totals.update(conversations=1, sent=len(every), answered=len(answered), user_turns=len(turns),
                      bot_events=kinds.count("bot"), answered_missing=missing, out_of_order=disorder,
                      without_bot=without_bot, paused=int("pause" in kinds), duplicated=duplicated)
        if missing or disorder or duplicated:
            damaged.append(conversation)
    return {**{k: totals[k] for k in ("conversations", "sent", "answered", "user_turns", "bot_events",
                                      "answered_missing", "out_of_order", "without_bot", "paused",
                                      "duplicated")},
            "conversations_damaged": len(damaged), "damaged_examples": damaged[:5]}


# -- memory -----------------------------------------------------------------------------------
def _status(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_tree() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def family(pid: int, tree: dict[int, list[int]]) -> list[int]:
    members, todo = [], [pid]
    while todo:
        current = todo.pop()
        members.append(current)
        todo.extend(tree.get(current, []))
    return members


def processes(cluster: Cluster) -> dict[str, int]:
    """name → pid of every running part, from var/prod/pids/*.pid and PostgreSQL's postmaster.pid."""
    found = {}
    for pid_file in sorted(cluster.pids.glob("*.pid")):
        pid = cluster.running(pid_file.stem)
        if pid:
            found[pid_file.stem] = pid
    try:
        found["postgres"] = int((cluster.folder / "pg" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return found


def memory(cluster: Cluster) -> dict[str, dict[str, float]]:
    """MiB per part: rss of the main process, and rss/pss summed over it and its children
    (nginx's worker, PostgreSQL's backends; pss shares shared memory out fairly)."""
    tree = process_tree()
    out = {}
    for name, pid in processes(cluster).items():
        members = family(pid, tree)
        out[name] = {"rss_mb": _status(pid, "VmRSS") / 1024, "processes": len(members),
                     "rss_all_mb": sum(_status(p, "VmRSS") for p in members) / 1024,
                     "pss_all_mb": sum(_pss(p) for p in members) / 1024}
    return out


def _jiffies(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


class CPUShare:
    """Who used the machine's CPU between `start()` and `stop()`: the topology, this bench, and
    everything else (other work on the machine competes for the same cores)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.hz = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> tuple[float, int, int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        tree = process_tree()
        topology = sum(_jiffies(p) for pid in processes(self.cluster).values() for p in family(pid, tree))
        return time.monotonic(), busy, topology, _jiffies(os.getpid())

    def start(self) -> "CPUShare":
        self.began = self._sample()
        return self

    def stop(self) -> dict[str, float]:
        """CPU seconds a wall second (2.0 = both of 2 cores busy). The topology's figure misses
        processes that ended in between (a killed replica)."""
        ended = self._sample()
        wall = max(ended[0] - self.began[0], 1e-9)
        busy, topology, bench = ((ended[i] - self.began[i]) / self.hz / wall for i in (1, 2, 3))
        if topology < 0:  # a part was killed meanwhile: its time is gone from the sum
            return {"cores": os.cpu_count() or 0, "machine_busy": busy, "topology": None, "bench": bench,
                    "others": None}
        return {"cores": os.cpu_count() or 0, "machine_busy": busy, "topology": topology, "bench": bench,
                "others": max(0.0, busy - topology - bench)}


# -- the topology -----------------------------------------------------------------------------
class Topology:
    """The production topology as the bench starts, breaks and repairs it."""

    def __init__(self, api_port: int) -> None:
        self.cluster = from_environment()
        self.api_port = api_port
        self.token = os.environ.get("RASA_AUTH_TOKEN", "").strip()

    def environment(self, replicas: int | None = None, lock: str | None = None) -> dict[str, str]:
        env = {**os.environ, **{k: os.environ.get(k, v) for k, v in WECHAT.items()},
               "WECHAT_API_BASE": f"http://127.0.0.1:{self.api_port}"}
        if replicas:
            env["PROD_REPLICAS"] = str(replicas)
        if lock:
            env["PROD_LOCK_STORE"] = lock
        return env

    def started(self) -> tuple[int, int]:
        """(replicas, action servers) whose pid files exist: what `down` must stop."""
        count = lambda prefix: max([int(p.stem.split("-")[1]) for p in self.cluster.pids.glob(f"{prefix}-*.pid")] or [0])  # noqa: E731
        return count("rasa"), count("actions")

    def command(self, what: str, env: dict[str, str], timeout: float = 600) -> float:
        """`python -m production.cluster what`; returns the seconds it took."""
        began = time.monotonic()
        subprocess.run([PY, "-m", "production.cluster", what], cwd=ROOT, env=env, check=True, timeout=timeout)
        return time.monotonic() - began

    def down(self) -> float:
        replicas, actions = self.started()
        env = {**os.environ, "PROD_REPLICAS": str(max(replicas, 1)), "PROD_ACTION_SERVERS": str(max(actions, 1))}
        return self.command("down", env)

    def up(self, replicas: int | None = None, lock: str | None = None) -> float:
        if not self.token:
            raise SystemExit("set RASA_AUTH_TOKEN (the topology's and the bench's token for Rasa's HTTP API)")
        return self.command("up", self.environment(replicas, lock))

    def restart(self, replicas: int, lock: str = "atomic") -> dict[str, Any]:
        print(f"# topology: down, then up with {replicas} replica(s), lock store {lock}", file=sys.stderr)
        took_down = self.down()
        self.cluster = from_environment()
        took_up = self.up(replicas, lock)
        return {"down_s": took_down, "up_s": took_up, "code": code_fingerprint()}

    def warm_up(self, scripts: list[list[str]]) -> None:
        """A few conversations on each replica directly: a replica's first answers after a start
        take up to 2 s (TensorFlow builds its graphs), which is not what the scenarios measure."""
        for port in self.replica_ports():
            for number, script in enumerate(scripts):
                for text in script:
                    requests.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook", timeout=30,
                                  headers={"Authorization": f"Bearer {self.cluster.rest_token()}"},
                                  json={"sender": f"bench-warmup-{port}-{number}-{time.time():.0f}", "message": text})

    def current(self) -> dict[str, Any]:
        endpoints = (self.cluster.folder / "endpoints.yml").read_text(encoding="utf-8") if \
            (self.cluster.folder / "endpoints.yml").exists() else ""
        lock = re.search(r"lock_store:\n\s+type: (\S+)", endpoints)
        running = processes(self.cluster)
        return {"replicas": sum(1 for name in running if name.startswith("rasa-")),
                "action_servers": sum(1 for name in running if name.startswith("actions-")),
                "lock_store": lock.group(1) if lock else "in-memory (none)"}

    # faults
    def kill_replica(self, number: int = 1) -> int:
        pid = int((self.cluster.pids / f"rasa-{number}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        return pid

    def bring_back(self) -> float:
        """`python -m production.cluster up`: starts only what is not running (reloads nginx)."""
        replicas, _ = self.started()
        return self.command("up", self.environment(max(replicas, 1), self.lock_choice()))

    def lock_choice(self) -> str:
        kind = self.current()["lock_store"]
        return {"redis": "stock"}.get(kind, "none" if kind.startswith("in-memory") else "atomic")

    def restart_postgres(self) -> None:
        pg_ctl = str(self.cluster.postgres_binaries() / "pg_ctl")
        # the server started anew inherits pg_ctl's stdout: a log file, not a pipe of ours
        subprocess.run([*self.cluster.as_postgres, pg_ctl, "-D", str(self.cluster.folder / "pg"), "-l",
                        str(self.cluster.folder / "postgres.log"), "-m", "fast", "-w", "restart"], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def stop_redis(self) -> None:
        self.cluster.stop("redis")

    def start_redis(self) -> None:
        self.cluster.start_redis()

    def stop_actions(self) -> None:
        for index in range(self.started()[1]):
            self.cluster.stop(f"actions-{index + 1}")

    def start_actions(self) -> None:
        self.cluster.start_actions(self.cluster.actions_secret())

    def replica_ports(self) -> list[int]:
        return self.cluster.ports.rasa(self.started()[0])


def code_fingerprint() -> str:
    """A short hash of the code the replicas run (channels, actions, production, patches) and
    of the model: other work on this machine may change it between two restarts."""
    import hashlib

    digest = hashlib.sha1()
    files = [*sorted(ROOT.glob("channels/*.py")), *sorted(ROOT.glob("actions/*.py")),
             *sorted(p for p in ROOT.glob("production/*.py") if not p.name.startswith("bench_")),
             ROOT / "rasa_patches.py", ROOT / "models" / "zhuqi.tar.gz"]
    for path in files:
        if path.exists():
            digest.update(path.name.encode() + str(path.stat().st_mtime_ns).encode() + path.read_bytes()[:1 << 20])
    git = lambda *args: subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout  # noqa: E731
    dirty = [line for line in git("status", "--porcelain", "--", "channels", "actions", "production", "rasa_patches.py",
                                  "models").splitlines() if "bench_" not in line]
    return f"{git('rev-parse', '--short', 'HEAD').strip()}{'+changes' if dirty else ''} {digest.hexdigest()[:10]}"


def socket_connections(ports: list[int]) -> Counter:
    """Established connections to each replica port (nginx's upstream side)."""
    out = subprocess.run(["ss", "-Htn", "state", "established"], capture_output=True, text=True).stdout
    found = Counter()
    for line in out.splitlines():
        for port in ports:
            if re.search(rf"\s127\.0\.0\.1:{port}\s", line + " "):
                found[port] += 1
    return found
