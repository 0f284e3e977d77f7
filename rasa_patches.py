"""The project's only changes to Rasa Open Source 3.6's own behaviour, applied at server start.

Each patch replaces one method of Rasa's, checked against the exact source it was written for:
when a Rasa upgrade changes that method, the patch is not applied, a warning says so and
tests/test_rasa_patches.py fails — then read the new method and drop or rewrite the patch.

1. `RemoteAction._validate_action_result` checked every action-server response with
   `jsonschema.validate`, which builds a validator and re-checks the schema on each call: 14.5 of
   the 14.8 ms a call spent validating, 40% of the server's CPU under load (docs/measurements.md).
   The patch validates against one validator built once; errors are the same
   (`best_match` of the same validator's errors, with Rasa's hint appended).
2. `RemoteAction._action_call_format` posted the whole tracker (every event since the session
   started: 1.3 MB at 200 turns) to the action server on every call. The patch sends only the
   latest `ACTION_TRACKER_EVENTS` events (default 40); slots, the latest message, the active loop
   and followup action travel in their own fields and are untouched. Our actions look back only a
   few user messages (actions/clarify.py, topics.py, handoff.py).
3. `RemoteAction.run` waited up to five minutes for the action server (DEFAULT_REQUEST_TIMEOUT)
   and, when it failed, raised: Rasa logged it and went on without a word to the user, who
   saw nothing at all. The patch gives the call ACTION_TIMEOUT_SECONDS (default 4) and turns a
   failure (refused, timed out, 5xx) into one apology (`UNAVAILABLE`), once per user message,
   followed by a listen (Rasa otherwise predicted the failed action again until its circuit
   breaker, ten calls later). After a timeout or a refusal, calls fail at once for
   UNREACHABLE_SECONDS (5), so no other user waits out the timeout meanwhile — but for one
   call every PROBE_SECONDS (1), which closes the window when it is answered: a server back
   from a freeze answers again within a second or two (it took the whole 5.1 s window before). An action
   rejection (400: a form's validation) is still Rasa's to handle.
4. `MessageProcessor._has_session_expired` ended a session only after
   `session_expiration_time` minutes of silence, so a busy conversation's session grew without
   bound: Rasa reloads and featurizes every event of the session on every message, and turns
   81-100 of one conversation took 2.23x as long as turns 1-20 (77 against 34 ms). The patch also ends it after
   SESSION_MAX_TURNS user messages (default 40) — never while a form is active or a person has
   the conversation; actions/session.py carries the topic into the new session.
5. `tracker_store.create_engine_kwargs` gave the PostgreSQL tracker store's pool no
   `pool_pre_ping`: after a PostgreSQL restart each pooled connection failed once, and Rasa's
   fail-safe store answered from (and saved to) memory — follow-ups lost their history and 2–9
   answered turns a restart never reached PostgreSQL. The patch adds `pool_pre_ping=True`.
6. and 7. `rasa.server._load_agent` (`PUT /model` with a model file, how `make retrain` swaps
   the model of `make run`) and `rasa.core.agent._update_model_from_server` (the replicas of
   `make up-prod` pulling from the model server) both call the synchronous `Agent.load_model` on
   the event loop: for 5–10 s nobody was answered, and an action call in flight when the wait
   began timed out — patch 3's fail-fast window then gave everyone the apology for 5 s (3 of 8
   swaps under load; docs/retrain.md). The patches build the new `MessageProcessor` (unpacking,
   every component) in a worker thread while the old model goes on answering, then set it on
   the agent in one step on the loop, as `Agent.load_model` does: the slowest answer during a
   swap fell from 4.9–10.2 s to 0.37–1.4 s. Their check covers `Agent.load_model` too, whose
   last lines they repeat.
8. and 9. `FailSafeTrackerStore.save` and `.retrieve` tried the tracker store once: during a
   PostgreSQL restart (down 0.3 s under `pg_ctl restart`) a failed save went to an in-memory
   store — the answered turn never reached PostgreSQL, and no other replica could see it — and a
   failed retrieve gave the message a new, empty conversation (bench_prod fault b: 2 turns lost
   of 600 even with patch 5). The patches try again, after 0.1 s doubling to 1 s, for up to
   TRACKER_RETRY_SECONDS (default 5; the conversation's lock is held meanwhile), then do what
   Rasa did: a store down for longer still degrades as before.

Applied by channels/rest.py, the REST channel that credentials.yml (and docker/credentials.yml)
always mount, so every `rasa run` of this project has them all; `rasa shell` and `rasa test` do not.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import time
from typing import Any, Callable

import rasa.server as rasa_server
from rasa.core import agent as rasa_agent
from rasa.core import processor as rasa_processor
from rasa.core import tracker_store as rasa_tracker_store
from rasa.core.actions import action as rasa_action

logger = logging.getLogger(__name__)

DEFAULT_ACTION_TRACKER_EVENTS = 40
DEFAULT_ACTION_TIMEOUT_SECONDS = 4.0
UNAVAILABLE = ("抱歉，智能助手这会儿没能处理您的问题（服务繁忙或正在维护）。请过一两分钟再发一次；"
               "急需人工服务的，稍后回复「转人工」。")
UNAVAILABLE_MARK = "service_unavailable"  # in the apology's metadata: an analytics reader counts it
# actions whose failure the user does not need to hear about: the session start runs before
# the message that will get its own answer (or apology)
SILENT_ACTIONS = {"action_session_start"}
DEFAULT_SESSION_MAX_TURNS = 40
# after an action server timed out or refused, calls fail at once for this long (then are tried)
UNREACHABLE_SECONDS = 5.0
DEFAULT_TRACKER_RETRY_SECONDS = 5.0  # how long a failing tracker store is tried again (patches 8, 9)
PROBE_SECONDS = 1.0  # inside that window, one call is let through this often, to see it back
_unreachable_until = 0.0
_next_probe = 0.0
_probing = False

# sha256 of inspect.getsource() of each method as Rasa 3.6.21 ships it
EXPECTED_SOURCES = {
    "RemoteAction._validate_action_result": "f8cdb4be6812396167ced74161b2ccd65c5ea676ad86d7d359d8c322d9d8dc42",
    "RemoteAction._action_call_format": "428795b944f22edba142d278ec47a30098975b01463ba337ec447dade52a0492",
    "RemoteAction.run": "ccabf6f1160d527a157fad5bd285ce69e8221b1bcad23f8a61499b4360a1c17e",
    "MessageProcessor._has_session_expired": "aa0e659a9cfa1f70616523da75045bd87d4424a03432726722c7dc80a9869200",
    "tracker_store.create_engine_kwargs": "dff5f092362096da88a6e62b71480d3d085fd321fef756b53fc822ab31526faa",
    # these two with Agent.load_model's source, which they repeat
    "server._load_agent": "8b7da32f0cb93073f290a5f2639f63d1f87b13d56c4ac192440db30a76fa8380",
    "agent._update_model_from_server": "673137a069209c802c5382d47e8d202954bd797a2d09d0c9fdf0bf6d0de301a4",
    "FailSafeTrackerStore.save": "8426dc08f58d71102f7c031ade8a26b0b1458c8bae162be7b091d288699a5e9b",
    "FailSafeTrackerStore.retrieve": "35d77318b0cc79771af3c667bc8c34cd5a56e494eaa8c4d713fd754b9d00d276",
}
# where each patched method or function lives (a class, or a module for a function)
PATCHED_CLASSES: dict[str, Any] = {"RemoteAction": rasa_action.RemoteAction,
                                   "MessageProcessor": rasa_processor.MessageProcessor,
                                   "tracker_store": rasa_tracker_store,
                                   "server": rasa_server, "agent": rasa_agent,
                                   "FailSafeTrackerStore": rasa_tracker_store.FailSafeTrackerStore}

_validator: Any = None
applied: dict[str, bool] = {}


def source_digest(function: Callable[..., Any], *repeated: Callable[..., Any]) -> str:
    """What the patched method looked like (and each method whose lines the patch repeats), to
    notice an upgrade that changed it."""
    return hashlib.sha256("".join(inspect.getsource(f) for f in (function, *repeated)).encode()).hexdigest()


def response_validator() -> Any:
    """The action-response schema's validator, built (and the schema checked) once."""
    global _validator
    if _validator is None:
        from jsonschema.validators import validator_for

        schema = rasa_action.RemoteAction.action_response_format_spec()
        cls = validator_for(schema)
        cls.check_schema(schema)
        _validator = cls(schema)
    return _validator


def validate_action_result(self: rasa_action.RemoteAction, result: dict[str, Any]) -> bool:
    """Rasa's check of an action-server response, against the validator built once."""
    from jsonschema import exceptions

    error = exceptions.best_match(response_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, "
        "make sure your response from the Action endpoint is valid. "
        "For more information about the format visit "
        f"{rasa_action.DOCS_BASE_URL}/custom-actions"
    )
    raise error


def tracker_events_sent() -> int:
    """How many of the latest events the action server gets (ACTION_TRACKER_EVENTS)."""
    try:
        return max(1, int(os.environ.get("ACTION_TRACKER_EVENTS", DEFAULT_ACTION_TRACKER_EVENTS)))
    except ValueError:
        return DEFAULT_ACTION_TRACKER_EVENTS


def original(key: str) -> Callable[..., Any]:
    """Rasa's own method that the patch `key` ("Class.method") replaced (itself if unpatched)."""
    owner, name = key.split(".")
    cls = PATCHED_CLASSES[owner]
    return getattr(cls, f"_zhuqi_original{name}", getattr(cls, name))


def action_call_format(self: rasa_action.RemoteAction, tracker: Any, domain: Any) -> dict[str, Any]:
    """Rasa's request to the action server, with the tracker's events cut to the latest few."""
    body = original("RemoteAction._action_call_format")(self, tracker, domain)
    events = body.get("tracker", {}).get("events")
    keep = tracker_events_sent()
    if isinstance(events, list) and len(events) > keep:
        body["tracker"]["events"] = events[-keep:]
    return body


def action_timeout() -> float:
    """Seconds the action server gets for one action (ACTION_TIMEOUT_SECONDS)."""
    try:
        return max(0.1, float(os.environ.get("ACTION_TIMEOUT_SECONDS", DEFAULT_ACTION_TIMEOUT_SECONDS)))
    except ValueError:
        return DEFAULT_ACTION_TIMEOUT_SECONDS


def apologised_this_turn(tracker: Any) -> bool:
    """Whether the apology was already given since the user's latest message."""
    from rasa.shared.core.events import BotUttered, UserUttered

    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, BotUttered) and (event.metadata or {}).get("apology") == UNAVAILABLE_MARK:
            return True
    return False


async def run_or_apologise(self: rasa_action.RemoteAction, output_channel: Any, nlg: Any, tracker: Any,
                           domain: Any) -> list[Any]:
    """Rasa's call of a custom action, bounded in time; a failure is said to the user once and
    ends the turn (without the listen, Rasa predicted the failed action again, ten times)."""
    import asyncio

    global _unreachable_until, _next_probe, _probing
    now = time.monotonic()
    probe = False
    if now < _unreachable_until:  # it just timed out or refused: do not wait again …
        if _probing or now < _next_probe:
            logger.warning("custom action %s not called: the action server failed a moment ago", self.name())
            return apology(self.name(), tracker)
        # … but let one call through every PROBE_SECONDS: a server back from a freeze is used
        # again within a second or two, not after the whole window
        probe, _probing, _next_probe = True, True, now + PROBE_SECONDS
    try:  # after the window, the next call is the probe: it answers, or opens the window again
        result = await asyncio.wait_for(original("RemoteAction.run")(self, output_channel, nlg, tracker, domain),
                                        timeout=action_timeout())
        if probe:
            _unreachable_until = 0.0
        return result
    except rasa_action.ActionExecutionRejection:
        raise
    except Exception as error:  # noqa: BLE001 - refused, timed out, 5xx: the user hears of it
        logger.error("custom action %s failed (%s: %s)", self.name(), type(error).__name__, error)
        if not isinstance(error.__cause__, rasa_action.ClientResponseError):  # unreachable, not one bad action
            _unreachable_until = time.monotonic() + UNREACHABLE_SECONDS
            _next_probe = time.monotonic() + PROBE_SECONDS
        return apology(self.name(), tracker)
    finally:
        if probe:
            _probing = False


def apology(action_name: str, tracker: Any) -> list[Any]:
    """What a failed action leaves: the apology (once per user message), then a listen."""
    from rasa.shared.core.events import BotUttered, FollowupAction

    if action_name in SILENT_ACTIONS:
        return []
    listen = [FollowupAction("action_listen")]
    if apologised_this_turn(tracker):
        return listen
    return [BotUttered(UNAVAILABLE, metadata={"apology": UNAVAILABLE_MARK}), *listen]


def session_max_turns() -> int:
    """User messages after which a session ends (SESSION_MAX_TURNS)."""
    try:
        return max(2, int(os.environ.get("SESSION_MAX_TURNS", DEFAULT_SESSION_MAX_TURNS)))
    except ValueError:
        return DEFAULT_SESSION_MAX_TURNS


def turns_in_session(tracker: Any) -> int:
    from rasa.shared.core.events import SessionStarted, UserUttered

    turns = 0
    for event in reversed(tracker.events):
        if isinstance(event, SessionStarted):
            break
        turns += isinstance(event, UserUttered)
    return turns


def has_session_expired(self: rasa_processor.MessageProcessor, tracker: Any) -> bool:
    """Rasa's expiry by silence, or a session that holds SESSION_MAX_TURNS user messages."""
    if original("MessageProcessor._has_session_expired")(self, tracker):
        return True
    if not self.domain.session_config.are_sessions_enabled() or tracker.active_loop_name or tracker.is_paused():
        return False
    return turns_in_session(tracker) >= session_max_turns()


def engine_kwargs(url: Any) -> dict[str, Any]:
    """Rasa's engine settings for the SQL tracker store, with each pooled connection checked
    before use on PostgreSQL (a restart left every pooled one dead)."""
    kwargs = original("tracker_store.create_engine_kwargs")(url)
    if rasa_tracker_store.is_postgresql_url(url):
        kwargs["pool_pre_ping"] = True
    return kwargs


def tracker_retry_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("TRACKER_RETRY_SECONDS", DEFAULT_TRACKER_RETRY_SECONDS)))
    except ValueError:
        return DEFAULT_TRACKER_RETRY_SECONDS


async def _from_primary(call: Callable[[], Any], what: str, sender_id: str) -> tuple[bool, Any]:
    """(True, what the primary store's `call` returned), tried again after 0.1 s doubling to
    1 s until TRACKER_RETRY_SECONDS are up; (False, None) if it never worked."""
    import asyncio

    deadline, delay = time.monotonic() + tracker_retry_seconds(), 0.1
    while True:
        try:
            return True, await call()
        except Exception as error:  # noqa: BLE001 - whatever the store raised, as Rasa catches it
            logger.warning("rasa_patches: the tracker store could not %s %s: %s", what, sender_id, error)
        if time.monotonic() + delay > deadline:
            return False, None
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def save_or_retry(self: rasa_tracker_store.FailSafeTrackerStore, tracker: Any) -> None:
    """`FailSafeTrackerStore.save`, the primary store tried again before the in-memory one."""
    saved, _ = await _from_primary(lambda: self._tracker_store.save(tracker), "save", tracker.sender_id)
    if not saved:
        await original("FailSafeTrackerStore.save")(self, tracker)


async def retrieve_or_retry(self: rasa_tracker_store.FailSafeTrackerStore, sender_id: str) -> Any:
    """`FailSafeTrackerStore.retrieve`, the primary store tried again before giving up (which
    starts the conversation afresh)."""
    found, tracker = await _from_primary(lambda: self._tracker_store.retrieve(sender_id), "retrieve", sender_id)
    return tracker if found else await original("FailSafeTrackerStore.retrieve")(self, sender_id)


async def set_model_off_the_loop(agent: Any, model_path: str, fingerprint: str | None = None) -> None:
    """`Agent.load_model`, its slow part (the processor) built in a worker thread."""
    import asyncio

    from rasa.core.nlg import TemplatedNaturalLanguageGenerator

    processor = await asyncio.to_thread(
        rasa_processor.MessageProcessor, model_path=model_path, tracker_store=agent.tracker_store,
        lock_store=agent.lock_store, action_endpoint=agent.action_endpoint, generator=agent.nlg,
        http_interpreter=agent.http_interpreter)
    # the rest of Agent.load_model, on the loop and without an await: no message sees half of it
    agent.processor = processor
    agent.domain = processor.domain
    agent._set_fingerprint(fingerprint)
    agent.tracker_store.domain = agent.domain
    if isinstance(agent.nlg, TemplatedNaturalLanguageGenerator):
        agent.nlg.responses = agent.domain.responses if agent.domain else {}


async def load_agent_off_the_loop(model_path: Any = None, model_server: Any = None, remote_storage: Any = None,
                                  endpoints: Any = None) -> Any:
    """`rasa.server._load_agent` for a model file on disk (PUT /model); anything else is Rasa's."""
    import warnings
    from http import HTTPStatus

    if (not model_path or model_server or remote_storage or not os.path.isfile(model_path)
            or (endpoints is not None and endpoints.model)):
        return await original("server._load_agent")(model_path=model_path, model_server=model_server,
                                                    remote_storage=remote_storage, endpoints=endpoints)
    try:
        with warnings.catch_warnings():  # "Agent loaded with no model": the model comes next
            warnings.simplefilter("ignore")
            agent = await rasa_agent.load_agent(endpoints=endpoints)
        await set_model_off_the_loop(agent, model_path)
    except Exception as error:  # as Rasa's: 500 LoadingError
        raise rasa_server.ErrorResponse(HTTPStatus.INTERNAL_SERVER_ERROR, "LoadingError",
                                        f"An unexpected error occurred. Error: {error}") from error
    if not agent.is_ready():
        raise rasa_server.ErrorResponse(HTTPStatus.BAD_REQUEST, "BadRequest",
                                        f"Agent with name '{model_path}' could not be loaded.",
                                        {"parameter": "model", "in": "query"})
    return agent


async def update_model_off_the_loop(model_server: Any, agent: Any) -> None:
    """`rasa.core.agent._update_model_from_server`, the pulled model built off the loop."""
    import aiohttp
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


PATCHES: dict[str, Callable[..., Any]] = {
    "RemoteAction._validate_action_result": validate_action_result,
    "RemoteAction._action_call_format": action_call_format,
    "RemoteAction.run": run_or_apologise,
    "MessageProcessor._has_session_expired": has_session_expired,
    "tracker_store.create_engine_kwargs": engine_kwargs,
    "server._load_agent": load_agent_off_the_loop,
    "agent._update_model_from_server": update_model_off_the_loop,
    "FailSafeTrackerStore.save": save_or_retry,
    "FailSafeTrackerStore.retrieve": retrieve_or_retry,
}
# methods whose lines a patch repeats: their source is checked with the patched one's
REPEATED: dict[str, tuple[Callable[..., Any], ...]] = {
    "server._load_agent": (rasa_agent.Agent.load_model,),
    "agent._update_model_from_server": (rasa_agent.Agent.load_model,),
}


def apply() -> dict[str, bool]:
    """Patch what still looks as expected; say which patch no longer applies."""
    for key, replacement in PATCHES.items():
        if applied.get(key):
            continue
        owner, name = key.split(".")
        cls = PATCHED_CLASSES[owner]
        rasas = getattr(cls, name)
        digest = source_digest(rasas, *REPEATED.get(key, ()))
        if digest != EXPECTED_SOURCES[key]:
            logger.warning("rasa_patches: %s is not the method this patch was written for "
                           "(source sha256 %s); not patched — see rasa_patches.py", key, digest)
            applied[key] = False
            continue
        setattr(cls, f"_zhuqi_original{name}", rasas)
        setattr(cls, name, replacement)
        applied[key] = True
    return dict(applied)
