"""Putting a new model in front of users: publish the file, then see every server use it.

Two ways a served model changes (docs/retrain.md):

- `make up-prod`: the replicas pull models/zhuqi.tar.gz from nginx's internal `/models/`
  every MODEL_PULL_SECONDS (Rasa's model server protocol, ETag / If-None-Match). Publishing
  the file is the swap; `wait_for_pull` watches each replica's `/status` until it reports
  another model.
- `make run`: one Rasa server with `--enable-api` and no model server. `swap` sends it
  `PUT /model` with the file's absolute path, waits until `/status` reports the new
  `model_id`, then parses one message with it.

Rasa 3.6 loads a model on its event loop in both cases (`Agent.load_model` is synchronous):
for 5–10 s no conversation is answered, and an action call in flight when it began times out
(an apology to every user for the next 5 s). rasa_patches.py (patches 6 and 7), applied in
every server process, builds the model in a worker thread instead (docs/retrain.md has the
measurements).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
from http import HTTPStatus
from pathlib import Path
from typing import Callable

import requests

PUT_TIMEOUT = 300.0  # seconds Rasa may take to load a model and answer PUT /model
WARM_UP_TEXT = "你好"


class SwapError(RuntimeError):
    """A server did not take the new model; the message says which and why."""


def model_id(archive: Path) -> str:
    """The `model_id` Rasa writes into the archive's metadata.json (new at every training)."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.name.lstrip("/") == "metadata.json":
                handle = tar.extractfile(member)
                if handle is not None:
                    return json.load(handle)["model_id"]
    raise ValueError(f"{archive} holds no metadata.json: not a Rasa model")


def publish(candidate: Path, target: Path, copy: Callable[[Path, Path], object] = shutil.copyfile) -> None:
    """Replace `target` by a copy of `candidate` in one rename.

    The copy goes to a hidden file beside the target (`.zhuqi.tar.gz.tmp`: neither a
    `*.tar.gz` that `rasa run --model models/` would pick, nor a file nginx is asked for),
    is flushed to disk, then renamed over the target, so a reader (nginx serving the
    replicas, a `rasa run` starting) sees the old file or the new one, never half of one.
    When the copy fails the target is untouched and the partial copy removed.
    """
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        copy(candidate, temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def status(url: str, token: str | None, timeout: float = 5.0) -> dict | None:
    """A server's `/status` (model_file, model_id), or None when it does not answer."""
    try:
        answer = requests.get(f"{url.rstrip('/')}/status", params=_auth(token), timeout=timeout)
        return answer.json() if answer.ok else None
    except (requests.RequestException, ValueError):
        return None


def swap(url: str, token: str | None, model: Path, expected_id: str, timeout: float = 120.0) -> dict:
    """`PUT /model` on one server, then wait until its `/status` reports `expected_id`.

    Returns what happened (seconds the PUT took, seconds until `/status` agreed, the first
    parse's latency); raises SwapError when the server refuses or never reports the model.
    """
    base = url.rstrip("/")
    probe = StallProbe(base)
    started = time.monotonic()
    try:
        with probe:
            answer = requests.put(f"{base}/model", params=_auth(token),
                                  json={"model_file": str(model.resolve())}, timeout=PUT_TIMEOUT)
    except requests.RequestException as error:
        raise SwapError(f"{base}: PUT /model failed: {error}") from error
    if answer.status_code != 204:
        raise SwapError(f"{base}: PUT /model answered {answer.status_code}: {answer.text[:300]}")
    put_seconds = time.monotonic() - started
    deadline = started + timeout
    while True:
        current = status(base, token)
        if current and current.get("model_id") == expected_id:
            break
        if time.monotonic() > deadline:
            raise SwapError(f"{base}: /status still reports {current and current.get('model_id')}, "
                            f"not {expected_id}, {timeout:.0f} s after PUT /model")
        time.sleep(0.5)
    loaded_seconds = time.monotonic() - started
    return {"url": base, "put_seconds": round(put_seconds, 2), "loaded_seconds": round(loaded_seconds, 2),
            "stalled_seconds": round(probe.longest, 2), "first_parse_seconds": warm_up(base, token)}


class StallProbe:
    """Asks the server's `/` twice a second while the PUT runs: the slowest answer is how long
    its event loop stopped answering everyone (Rasa 3.6 loads the model on it)."""

    def __init__(self, url: str, every: float = 0.5) -> None:
        import threading

        self.url, self.every, self.longest = url, every, 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.done.is_set():
            started = time.monotonic()
            try:
                requests.get(f"{self.url}/", timeout=PUT_TIMEOUT)
            except requests.RequestException:
                pass
            self.longest = max(self.longest, time.monotonic() - started)
            self.done.wait(self.every)

    def __enter__(self) -> "StallProbe":
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.done.set()
        self.thread.join(timeout=PUT_TIMEOUT)


def warm_up(url: str, token: str | None) -> float | None:
    """Parse one message with the new model (`POST /model/parse`, no conversation touched):
    its latency in s, None when it failed."""
    started = time.monotonic()
    try:
        answer = requests.post(f"{url.rstrip('/')}/model/parse", params=_auth(token),
                               json={"text": WARM_UP_TEXT}, timeout=60)
    except requests.RequestException:
        return None
    return round(time.monotonic() - started, 3) if answer.ok else None


def wait_for_pull(before: dict[str, str | None], token: str | None, timeout: float = 60.0,
                  pause: float = 1.0) -> dict[str, str | None]:
    """Wait until every replica (url → its model_id before publishing) reports another model.

    Returns url → the model_id it reports now (unchanged for one that timed out).
    """
    now = dict(before)
    deadline = time.monotonic() + timeout
    waiting = set(before)
    while waiting:
        for url in sorted(waiting):
            current = status(url, token)
            if current and current.get("model_id") and current["model_id"] != before[url]:
                now[url] = current["model_id"]
                waiting.discard(url)
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(pause)
    return now


def _auth(token: str | None) -> dict[str, str]:
    return {"token": token} if token else {}
