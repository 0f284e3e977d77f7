"""rasa_patches.py: each patch applies to this Rasa, and behaves as Rasa's own method did.

When a Rasa upgrade changes a patched method, `apply()` leaves it alone and the first test
fails: read the new method, then drop or rewrite the patch.
"""

from __future__ import annotations

import asyncio

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

import channels.rest  # noqa: F401 - applies the patches, as Rasa's start does
import rasa_patches


def test_every_patch_applies_to_the_installed_rasa() -> None:
    assert rasa_patches.apply() == {key: True for key in rasa_patches.PATCHES}
    for key, replacement in rasa_patches.PATCHES.items():
        owner, name = key.split(".")
        assert getattr(rasa_patches.PATCHED_CLASSES[owner], name) is replacement
        repeated = rasa_patches.REPEATED.get(key, ())
        assert rasa_patches.source_digest(rasa_patches.original(key), *repeated) == rasa_patches.EXPECTED_SOURCES[key]


def test_an_upgraded_method_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(rasa_patches.EXPECTED_SOURCES, "RemoteAction._validate_action_result", "0" * 64)
    monkeypatch.setattr(rasa_patches, "applied", {key: True for key in rasa_patches.PATCHES
                                                  if key != "RemoteAction._validate_action_result"})
    assert rasa_patches.apply()["RemoteAction._validate_action_result"] is False


def action() -> RemoteAction:
    return RemoteAction("action_answer_topic", EndpointConfig("http://127.0.0.1:1/webhook"))


def test_valid_responses_pass_and_the_schema_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = RemoteAction.action_response_format_spec()
    cls = jsonschema.validators.validator_for(schema)
    checked = []
    real = cls.check_schema.__func__

    def counting(klass, schema, *args, **kwargs):  # type: ignore[no-untyped-def]
        checked.append(schema)
        return real(klass, schema, *args, **kwargs)

    monkeypatch.setattr(cls, "check_schema", classmethod(counting))
    monkeypatch.setattr(rasa_patches, "_validator", None)
    response = {"events": [{"event": "slot", "name": "topic", "value": "utilities"}],
                "responses": [{"text": "可以。", "custom": {"type": "service_card"}}]}
    for _ in range(3):
        assert action()._validate_action_result(response) is True
    assert len(checked) == 1  # Rasa's own method checked the schema on every call
    rasa_patches.original("RemoteAction._validate_action_result")(action(), response)
    assert len(checked) == 2


@pytest.mark.parametrize("response", [
    {"events": [{"name": "topic"}]},  # an event without its type
    {"events": "slot"},
    {"responses": [["text"]]},
])
def test_invalid_responses_raise_what_rasa_raised(response: dict) -> None:
    with pytest.raises(jsonschema.ValidationError) as ours:
        action()._validate_action_result(response)
    with pytest.raises(jsonschema.ValidationError) as rasas:
        rasa_patches.original("RemoteAction._validate_action_result")(action(), response)
    assert ours.value.message == rasas.value.message
    assert "Failed to validate Action server response" in ours.value.message


def long_tracker(turns: int, domain: "Domain") -> DialogueStateTracker:
    events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    for turn in range(turns):
        events += [UserUttered(f"问题{turn}", {"name": "utilities", "confidence": 0.9}),
                   SlotSet("topic", "utilities"), ActionExecuted("action_answer_topic"),
                   ActionExecuted("action_listen")]
    return DialogueStateTracker.from_events("long", events, slots=domain.slots)


def test_the_action_server_gets_the_latest_events_only(monkeypatch: pytest.MonkeyPatch) -> None:
    domain = Domain.load("domain.yml")
    tracker = long_tracker(200, domain)
    full = rasa_patches.original("RemoteAction._action_call_format")(action(), tracker, domain)
    sent = action()._action_call_format(tracker, domain)
    assert len(full["tracker"]["events"]) == 3 + 4 * 200
    assert sent["tracker"]["events"] == full["tracker"]["events"][-rasa_patches.DEFAULT_ACTION_TRACKER_EVENTS:]
    assert sent["tracker"]["latest_message"]["text"] == "问题199"
    assert {k: v for k, v in sent["tracker"].items() if k != "events"} == \
        {k: v for k, v in full["tracker"].items() if k != "events"}
    short = long_tracker(2, domain)
    assert action()._action_call_format(short, domain)["tracker"]["events"] == \
        rasa_patches.original("RemoteAction._action_call_format")(action(), short, domain)["tracker"]["events"]
    monkeypatch.setenv("ACTION_TRACKER_EVENTS", "8")
    assert len(action()._action_call_format(tracker, domain)["tracker"]["events"]) == 8


def tracker_after(text: str, *events: object) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("apology", [
        ActionExecuted("action_listen"), UserUttered(text, {"name": "utilities", "confidence": 0.9}), *events])


def run(action_: RemoteAction, tracker: DialogueStateTracker) -> list:
    import asyncio

    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator

    domain = Domain.load("domain.yml")
    return asyncio.run(action_.run(CollectingOutputChannel(), TemplatedNaturalLanguageGenerator(domain.responses),
                                   tracker, domain))


def test_an_action_server_that_refuses_gets_the_user_an_apology_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.shared.core.events import BotUttered, FollowupAction

    monkeypatch.setattr(rasa_patches, "_unreachable_until", 0.0)
    refused = RemoteAction("action_answer_topic", EndpointConfig("http://127.0.0.1:1/webhook"))
    events = run(refused, tracker_after("水电气报装要多久"))
    assert [type(e) for e in events] == [BotUttered, FollowupAction] and events[0].text == rasa_patches.UNAVAILABLE
    assert events[1].action_name == "action_listen"  # the turn ends: Rasa would predict the action again
    assert "转人工" in events[0].text and not any(ch.isdigit() for ch in events[0].text)  # no invented figure
    again = run(refused, tracker_after("水电气报装要多久", *events))
    assert [type(e) for e in again] == [FollowupAction]  # once per user message
    session_start = RemoteAction("action_session_start", EndpointConfig("http://127.0.0.1:1/webhook"))
    assert run(session_start, tracker_after("你好")) == []


def test_after_a_refusal_calls_fail_at_once_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(rasa_patches, "_unreachable_until", 0.0)
    run(RemoteAction("action_answer_topic", EndpointConfig("http://127.0.0.1:1/webhook")), tracker_after("在哪办"))
    assert rasa_patches._unreachable_until > time.monotonic() + rasa_patches.UNREACHABLE_SECONDS - 1
    calls = []
    monkeypatch.setattr(rasa_patches, "original", lambda key: lambda *a: calls.append(a))
    events = run(RemoteAction("action_answer_topic", EndpointConfig("http://127.0.0.1:2/webhook")),
                 tracker_after("在哪办"))
    assert calls == [] and events[0].text == rasa_patches.UNAVAILABLE  # not even tried
    monkeypatch.setattr(rasa_patches, "_unreachable_until", 0.0)


def test_a_slow_action_server_is_given_up_on_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts, never answers
    threading.Thread(target=lambda: [listener.accept() for _ in range(8)], daemon=True).start()
    monkeypatch.setenv("ACTION_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setattr(rasa_patches, "_unreachable_until", 0.0)
    slow = RemoteAction("action_answer_topic",
                        EndpointConfig(f"http://127.0.0.1:{listener.getsockname()[1]}/webhook"))
    started = time.monotonic()
    events = run(slow, tracker_after("首贷续贷中心在哪"))
    assert events[0].text == rasa_patches.UNAVAILABLE
    assert time.monotonic() - started < 5  # Rasa's own timeout is 300 s
    listener.close()


def test_a_long_session_ends_after_the_most_turns_but_not_inside_a_form_or_a_handoff(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.events import ActiveLoop, ConversationPaused

    domain = Domain.load("domain.yml")
    processor = MessageProcessor.__new__(MessageProcessor)  # only its domain is read
    processor.domain = domain
    monkeypatch.setenv("SESSION_MAX_TURNS", "10")
    assert processor._has_session_expired(long_tracker(9, domain)) is False
    assert processor._has_session_expired(long_tracker(10, domain)) is True
    in_form = long_tracker(12, domain)
    in_form.update(ActiveLoop("handoff_form"))
    assert processor._has_session_expired(in_form) is False
    with_a_person = long_tracker(12, domain)
    with_a_person.update(ConversationPaused())
    assert processor._has_session_expired(with_a_person) is False
    new_session = long_tracker(12, domain)
    for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
        new_session.update(event)
    assert rasa_patches.turns_in_session(new_session) == 0
    assert processor._has_session_expired(new_session) is False


def test_the_window_does_not_feed_itself_and_the_first_call_after_it_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users asking every second during an outage must not keep the window open for ever."""
    import time

    monkeypatch.setattr(rasa_patches, "_unreachable_until", 0.0)
    run(RemoteAction("action_answer_topic", EndpointConfig("http://127.0.0.1:1/webhook")), tracker_after("在哪办"))
    opened = rasa_patches._unreachable_until
    run(RemoteAction("action_answer_topic", EndpointConfig("http://127.0.0.1:1/webhook")), tracker_after("在哪办"))
    assert rasa_patches._unreachable_until == opened  # a call skipped inside the window does not extend it
    monkeypatch.setattr(rasa_patches, "_unreachable_until", time.monotonic() - 0.1)  # the window has passed
    answered = []

    async def answering(*args: object) -> list:
        answered.append(args)
        return []

    monkeypatch.setattr(rasa_patches, "original", lambda key: answering)
    assert run(RemoteAction("action_answer_topic", EndpointConfig("http://127.0.0.1:2/webhook")),
               tracker_after("在哪办")) == [] and len(answered) == 1  # the probe went through
    monkeypatch.setattr(rasa_patches, "_unreachable_until", 0.0)


def test_inside_the_window_one_call_a_second_probes_and_an_answer_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server back from a freeze is used again within PROBE_SECONDS, not after the window."""
    import time

    monkeypatch.setattr(rasa_patches, "_unreachable_until", time.monotonic() + rasa_patches.UNREACHABLE_SECONDS)
    monkeypatch.setattr(rasa_patches, "_next_probe", time.monotonic() + 60)  # no probe due yet
    answered = []

    async def answering(*args: object) -> list:
        answered.append(args)
        return []

    monkeypatch.setattr(rasa_patches, "original", lambda key: answering)
    action_ = RemoteAction("action_answer_topic", EndpointConfig("http://127.0.0.1:2/webhook"))
    assert run(action_, tracker_after("在哪办"))[0].text == rasa_patches.UNAVAILABLE and not answered
    monkeypatch.setattr(rasa_patches, "_next_probe", time.monotonic() - 0.1)  # a probe is due
    assert run(action_, tracker_after("在哪办")) == [] and len(answered) == 1  # the probe went through …
    assert rasa_patches._unreachable_until == 0.0  # … and, answered, closed the window
    assert run(action_, tracker_after("在哪办")) == [] and len(answered) == 2
    # a probe that fails again opens a new window, and the next probe is a second away
    monkeypatch.setattr(rasa_patches, "_unreachable_until", time.monotonic() + 1)
    monkeypatch.setattr(rasa_patches, "_next_probe", time.monotonic() - 0.1)
    refused = RemoteAction("action_answer_topic", EndpointConfig("http://127.0.0.1:1/webhook"))
    monkeypatch.setattr(rasa_patches, "original", lambda key: RemoteAction._zhuqi_originalrun)  # Rasa's own
    assert run(refused, tracker_after("在哪办"))[0].text == rasa_patches.UNAVAILABLE
    assert rasa_patches._unreachable_until > time.monotonic() + rasa_patches.UNREACHABLE_SECONDS - 1
    assert rasa_patches._next_probe > time.monotonic() + rasa_patches.PROBE_SECONDS - 0.5
    assert rasa_patches._probing is False
    monkeypatch.setattr(rasa_patches, "_unreachable_until", 0.0)


def test_the_postgresql_tracker_store_checks_a_pooled_connection_before_using_it() -> None:
    from rasa.core import tracker_store

    assert tracker_store.create_engine_kwargs("postgresql://zhuqi@127.0.0.1:5432/zhuqi")["pool_pre_ping"] is True
    assert "pool_pre_ping" not in tracker_store.create_engine_kwargs("sqlite:///tracker.db")


class FlakyStore(InMemoryTrackerStore):
    """A primary tracker store that fails its first `failures` calls, as PostgreSQL restarting does."""

    def __init__(self, failures: int) -> None:
        super().__init__(None)
        self.failures, self.calls = failures, 0

    def _call(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("server closed the connection unexpectedly")

    async def save(self, tracker) -> None:
        self._call()
        await super().save(tracker)

    async def retrieve(self, sender_id: str):
        self._call()
        return await super().retrieve(sender_id)


def fail_safe(primary: FlakyStore):
    from rasa.core.tracker_store import FailSafeTrackerStore

    return FailSafeTrackerStore(primary)


def test_a_save_during_a_database_restart_reaches_the_database() -> None:
    """Three failed tries (0.7 s of a restart) and the turn is still saved in the primary store,
    not in Rasa's in-memory fallback, which no other replica reads."""
    primary = FlakyStore(failures=3)
    store = fail_safe(primary)
    tracker = DialogueStateTracker.from_events("restart-1", [UserUttered("开公司要多久")])
    asyncio.run(store.save(tracker))
    assert primary.calls == 4
    assert asyncio.run(InMemoryTrackerStore.retrieve(primary, "restart-1")) is not None
    assert asyncio.run(store.fallback_tracker_store.retrieve("restart-1")) is None


def test_a_retrieve_during_a_database_restart_finds_the_conversation() -> None:
    primary = FlakyStore(failures=0)
    asyncio.run(InMemoryTrackerStore.save(primary, DialogueStateTracker.from_events("restart-2", [UserUttered("你好")])))
    primary.failures, primary.calls = 2, 0
    found = asyncio.run(fail_safe(primary).retrieve("restart-2"))
    assert found is not None and found.latest_message.text == "你好"


def test_a_store_down_for_longer_degrades_as_rasa_did(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past TRACKER_RETRY_SECONDS: Rasa's own fallback (memory for a save, none for a retrieve)."""
    monkeypatch.setenv("TRACKER_RETRY_SECONDS", "0.35")
    primary = FlakyStore(failures=100)
    store = fail_safe(primary)
    asyncio.run(store.save(DialogueStateTracker.from_events("down-1", [])))
    assert 3 <= primary.calls <= 5  # the first try, 0.1 + 0.2 s of retries, Rasa's own try
    assert asyncio.run(store.fallback_tracker_store.retrieve("down-1")) is not None
    assert asyncio.run(store.retrieve("down-1")) is None


def test_a_changed_load_model_leaves_the_model_patches_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model patches repeat Agent.load_model's last lines: when it changes, they stand down."""
    import rasa.core.agent as rasa_agent
    import rasa.server as rasa_server

    monkeypatch.setattr(rasa_server, "_load_agent", rasa_patches.original("server._load_agent"))
    monkeypatch.setattr(rasa_patches, "applied", {key: True for key in rasa_patches.PATCHES
                                                  if key != "server._load_agent"})

    def load_model(self, model_path, fingerprint=None):  # an "upgraded" Agent.load_model
        return None

    monkeypatch.setitem(rasa_patches.REPEATED, "server._load_agent", (load_model,))
    assert rasa_patches.apply()["server._load_agent"] is False
    assert rasa_server._load_agent is rasa_patches.original("server._load_agent")
    assert rasa_agent._update_model_from_server is rasa_patches.update_model_off_the_loop


def test_a_new_model_is_built_in_a_thread_and_set_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading

    import rasa.core.processor

    built_in: list[int] = []

    class Processor:
        domain = None

        def __init__(self, **kwargs) -> None:
            built_in.append(threading.get_ident())
            self.kwargs = kwargs

    class Agent:
        tracker_store = type("Store", (), {"domain": "old"})()
        lock_store = action_endpoint = nlg = http_interpreter = None
        processor = None

        def _set_fingerprint(self, fingerprint) -> None:
            self.fingerprint = fingerprint

    monkeypatch.setattr(rasa.core.processor, "MessageProcessor", Processor)
    agent = Agent()
    asyncio.run(rasa_patches.set_model_off_the_loop(agent, "model.tar.gz", "etag"))
    assert built_in and built_in[0] != threading.get_ident()
    assert isinstance(agent.processor, Processor) and agent.processor.kwargs["model_path"] == "model.tar.gz"
    assert agent.fingerprint == "etag" and agent.tracker_store.domain is None


@pytest.mark.model
def test_put_model_loads_a_real_model_off_the_loop() -> None:
    """rasa.server._load_agent, patched, gives a ready agent while the loop keeps running."""
    import asyncio
    import time

    import rasa.server as rasa_server

    from tests.conftest import MODEL

    async def load_while_ticking() -> tuple[object, float]:
        longest, last = 0.0, time.monotonic()
        task = asyncio.ensure_future(rasa_server._load_agent(model_path=str(MODEL)))
        while not task.done():
            await asyncio.sleep(0.05)
            now = time.monotonic()
            longest, last = max(longest, now - last), now
        return task.result(), longest

    agent, longest = asyncio.run(load_while_ticking())
    assert agent.is_ready() and agent.processor.model_metadata.model_id
    # Rasa's own load held the loop for the whole 5–10 s; built in a thread, the loop ticks on
    # (a generous bound: the thread and the loop share the interpreter lock)
    assert longest < 2.0, longest

