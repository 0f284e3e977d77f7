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
for 5–8 s no conversation is answered, and an action call in flight when it began times out
(an apology to every user for the next 5 s). `load_models_off_the_loop`, applied in the server
process, builds the model in a worker thread instead (docs/retrain.md has the measurements).
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


# -- in the Rasa server: build the new model off the event loop -----------------------------------
# sha256 of inspect.getsource() of what the patch replaces or repeats, as Rasa 3.6.21 ships it
EXPECTED_SOURCES = {
    "rasa.server._load_agent": "8b7da32f0cb93073f290a5f2639f63d1f87b13d56c4ac192440db30a76fa8380",
    "rasa.core.agent._update_model_from_server": "673137a069209c802c5382d47e8d202954bd797a2d09d0c9fdf0bf6d0de301a4",
}
_originals: dict[str, object] = {}


def load_models_off_the_loop() -> dict[str, bool]:
    """Patch Rasa 3.6 so that a new model is built in a worker thread while the old one answers.

    `PUT /model` (`rasa.server._load_agent`) and the model-server pull
    (`rasa.core.agent._update_model_from_server`) both call the synchronous
    `Agent.load_model` on the event loop: every conversation waits 6–10 s, and an action call
    in flight when the wait began times out (ACTION_TIMEOUT_SECONDS), which opens
    rasa_patches' fail-fast window: 5 s of apologies to everyone (docs/retrain.md). With the
    patch the `MessageProcessor` (unpacking, every component loaded) is built by
    `asyncio.to_thread`, then set on the agent in one step on the loop, as `Agent.load_model`
    sets it. Each replaced function is checked against the source it was written for; one
    that changed is left alone, with a warning. Applied in the server process (wiring:
    docs/retrain.md).
    """
    import hashlib
    import inspect
    import logging

    import rasa.core.agent as rasa_agent
    import rasa.server as rasa_server

    targets = {"rasa.server._load_agent": (rasa_server, "_load_agent", _load_agent),
               "rasa.core.agent._update_model_from_server": (rasa_agent, "_update_model_from_server",
                                                             _update_model_from_server)}
    repeated = inspect.getsource(rasa_agent.Agent.load_model)
    applied = {}
    for key, (module, name, replacement) in targets.items():
        current = getattr(module, name)
        if current is replacement:
            applied[key] = True
            continue
        digest = hashlib.sha256((inspect.getsource(current) + repeated).encode()).hexdigest()
        if digest != EXPECTED_SOURCES[key]:
            logging.getLogger(__name__).warning(
                "model_swap: %s or Agent.load_model is not what this patch was written for (sha256 %s); "
                "models load on the event loop", key, digest)
            applied[key] = False
            continue
        _originals[key] = current
        setattr(module, name, replacement)
        applied[key] = True
    return applied


async def set_model_off_the_loop(agent, model_path, fingerprint: str | None = None) -> None:
    """`Agent.load_model`, its slow part (the processor) in a worker thread."""
    import asyncio

    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.core.processor import MessageProcessor

    processor = await asyncio.to_thread(
        MessageProcessor, model_path=model_path, tracker_store=agent.tracker_store, lock_store=agent.lock_store,
        action_endpoint=agent.action_endpoint, generator=agent.nlg, http_interpreter=agent.http_interpreter)
    # the rest of Agent.load_model, on the loop and without an await: no message sees half of it
    agent.processor = processor
    agent.domain = processor.domain
    agent._set_fingerprint(fingerprint)
    agent.tracker_store.domain = agent.domain
    if isinstance(agent.nlg, TemplatedNaturalLanguageGenerator):
        agent.nlg.responses = agent.domain.responses if agent.domain else {}


async def _load_agent(model_path=None, model_server=None, remote_storage=None, endpoints=None):
    """`rasa.server._load_agent` for a model file on disk; anything else goes to Rasa's own."""
    import warnings

    import rasa.core.agent as rasa_agent
    from rasa.server import ErrorResponse

    original = _originals["rasa.server._load_agent"]
    if (not model_path or model_server or remote_storage or not os.path.isfile(model_path)
            or (endpoints is not None and endpoints.model)):
        return await original(model_path=model_path, model_server=model_server,  # type: ignore[operator]
                              remote_storage=remote_storage, endpoints=endpoints)
    try:
        with warnings.catch_warnings():  # "Agent loaded with no model": the model comes next
            warnings.simplefilter("ignore")
            agent = await rasa_agent.load_agent(endpoints=endpoints)
        await set_model_off_the_loop(agent, model_path)
    except Exception as error:  # as Rasa's: 500 LoadingError
        raise ErrorResponse(HTTPStatus.INTERNAL_SERVER_ERROR, "LoadingError",
                            f"An unexpected error occurred. Error: {error}") from error
    if not agent.is_ready():
        raise ErrorResponse(HTTPStatus.BAD_REQUEST, "BadRequest", f"Agent with name '{model_path}' could not be loaded.",
                            {"parameter": "model", "in": "query"})
    return agent


async def _update_model_from_server(model_server, agent) -> None:
    """`rasa.core.agent._update_model_from_server`, the model built off the loop."""
    import logging

    import aiohttp
    import rasa.core.agent as rasa_agent
    from rasa.nlu.utils import is_url
    from rasa.utils.common import TempDirectoryPath, get_temp_dir_name

    if not is_url(model_server.url):
        raise aiohttp.InvalidURL(model_server.url)
    with TempDirectoryPath(get_temp_dir_name()) as temporary_directory:
        try:
            fingerprint = await rasa_agent._pull_model_and_fingerprint(model_server, agent.fingerprint,
                                                                        temporary_directory)
            if fingerprint:
                await set_model_off_the_loop(agent, temporary_directory, fingerprint)
        except Exception:  # as Rasa's: the previous model stays
            logging.getLogger("rasa.core.agent").exception(
                "Failed to update model. The previous model will stay loaded instead.")
