"""The action server is private, tried as the attack on `make run`: forged webhook calls from
outside, with no secret or a wrong one, on the loopback and on this machine's other addresses."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from actions import secret
from cases.repository import CaseRepository
from tests.e2e.servers import ACTIONS_SECRET, Servers, running
from tests.e2e.test_handoff import custom, hand_over

pytestmark = [pytest.mark.model, pytest.mark.servers]
WRONG = {"Authorization": "Bearer not-the-secret-0123456789"}


def forged(action: str, sender: str, slots: dict[str, Any] | None = None) -> dict[str, Any]:
    """The call Rasa would make, with a tracker the attacker made up."""
    tracker = {"sender_id": sender, "slots": slots or {}, "latest_message": {"text": "", "intent": {}, "entities": []},
               "events": [], "paused": False, "followup_action": None, "active_loop": {},
               "latest_action_name": "action_listen", "latest_input_channel": "rest"}
    return {"next_action": action, "sender_id": sender, "tracker": tracker, "domain": {}, "version": "3.6.21"}


def post(servers: Servers, call: dict[str, Any], headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(f"{servers.actions_url}/webhook", json=call, headers=headers or {}, timeout=10)


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on a TCP port (/proc/net/tcp and tcp6)."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, packed))
    return found


def outside_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), if not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_a_forged_open_case_without_the_secret_opens_nothing(servers: Servers) -> None:
    cases = CaseRepository(servers.channels_db)
    call = forged("action_open_case", "forged-open-1", {"handoff_contact": "13800000000",
                                                        "handoff_company": "伪造公司", "handoff_problem": "forged"})
    for headers in ({}, WRONG, {"Authorization": ACTIONS_SECRET}):
        refused = post(servers, call, headers)
        assert (refused.status_code, refused.json()) == (401, {"error": "unauthorized"}), headers
    assert cases.open_case_of("forged-open-1") is None and cases.last_resolved_of("forged-open-1") is None


def test_a_forged_restart_without_the_secret_leaves_the_users_case_open(servers: Servers) -> None:
    payload = hand_over(servers, "forged-restart-1")  # a real user, waiting for a specialist
    cases = CaseRepository(servers.channels_db)
    call = forged("action_restart", "forged-restart-1")
    for headers in ({}, WRONG):
        assert post(servers, call, headers).status_code == 401, headers
    assert cases.get(payload["case_id"]).status == "waiting" and len(cases.events(payload["case_id"])) == 1
    assert servers.say("forged-restart-1", "在吗") == []  # still paused: nothing reached the tracker either
    # the same call with the secret is the attack that worked before: only the secret stops it
    answered = post(servers, call, secret.headers(ACTIONS_SECRET))
    assert answered.status_code == 200 and cases.get(payload["case_id"]).status == "resolved"


def test_health_needs_no_secret_and_the_action_list_does(servers: Servers) -> None:
    assert requests.get(f"{servers.actions_url}/health", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{servers.actions_url}/actions", timeout=10).status_code == 401


def test_the_action_server_listens_on_loopback_only(servers: Servers) -> None:
    port = int(servers.actions_url.rsplit(":", 1)[1])
    assert listening_addresses(port) == {"127.0.0.1"}
    address = outside_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")  # the socket check above still held
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{address}:{port}/health", timeout=3)


def test_without_a_secret_run_sh_makes_one_that_only_rasa_gets(tmp_path: Path) -> None:
    """The default `make run`: no ACTIONS_SECRET set. Rasa still runs actions; a caller without
    the generated secret does not, and the endpoints file holding it is private and removed."""
    run_tmp = tmp_path / "tmp"
    run_tmp.mkdir()
    with running(tmp_path, {"ACTIONS_SECRET": "", "TMPDIR": str(run_tmp)}) as servers:
        replies = servers.say("generated-secret-1", "开公司最快多久能拿到执照")
        assert any(c.get("type") == "service_card" for c in custom(replies)), replies  # actions ran
        [written] = run_tmp.glob("endpoints.*.yml")
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        action = yaml.safe_load(written.read_text(encoding="utf-8"))["action_endpoint"]
        assert action["url"] == f"{servers.actions_url}/webhook"
        generated = action["headers"]["Authorization"].removeprefix("Bearer ")
        assert len(generated) >= 32 and generated != ACTIONS_SECRET
        assert post(servers, forged("action_open_case", "forged-open-2"), secret.headers(ACTIONS_SECRET)
                    ).status_code == 401
    assert not list(run_tmp.glob("endpoints.*.yml"))


def test_a_frozen_then_killed_action_server_gets_an_apology_and_make_run_restarts_it(tmp_path: Path) -> None:
    """Degrade, don't vanish: the user hears within seconds that the assistant could not answer
    (Rasa alone waited 300 s, then said nothing), and run.sh brings the action server back."""
    import signal
    import subprocess
    import time

    import rasa_patches

    with running(tmp_path, {"ACTION_TIMEOUT_SECONDS": "2", "RESTART_SECONDS": "1"}) as servers:
        port = servers.actions_url.rsplit(":", 1)[1]

        def action_server_pid() -> int:
            found = subprocess.run(["pgrep", "-f", f"actions.server --host 127.0.0.1 --port {port}"],
                                   capture_output=True, text=True).stdout.split()
            return int(found[0]) if found else 0

        servers.say("owner-warming-up", "注销公司找哪个部门")  # a new server's first answer is slow anyway
        frozen = action_server_pid()
        os.kill(frozen, signal.SIGSTOP)
        try:
            started = time.monotonic()
            replies = servers.say("owner-frozen", "注销公司找哪个部门")
            assert time.monotonic() - started < 5
            assert [r.get("text") for r in replies] == [rasa_patches.UNAVAILABLE]
        finally:
            os.kill(frozen, signal.SIGCONT)
        answered_again(servers, "owner-frozen")

        os.kill(frozen, signal.SIGKILL)
        assert [r.get("text") for r in servers.say("owner-killed", "注销公司找哪个部门")] == [rasa_patches.UNAVAILABLE]
        def back() -> bool:
            try:
                return action_server_pid() not in (0, frozen) and \
                    requests.get(f"{servers.actions_url}/health", timeout=2).ok
            except requests.RequestException:
                return False

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not back():
            time.sleep(0.5)
        assert action_server_pid() not in (0, frozen)
        asked = answered_again(servers, "owner-killed")
        assert servers.user_turns("owner-killed") == ["注销公司找哪个部门"] * (1 + asked)  # nothing lost


def answered_again(servers: Servers, sender: str) -> int:
    """Ask every second, as users do during an outage, until answered: within the fail-fast
    window and a little (the asking must not keep the window open). How many were asked."""
    import time

    import rasa_patches

    deadline = time.monotonic() + rasa_patches.UNREACHABLE_SECONDS + 6
    asked = 0
    while time.monotonic() < deadline:
        asked += 1
        if "区市场监管局" in " ".join(r.get("text", "") for r in servers.say(sender, "注销公司找哪个部门")):
            return asked
        time.sleep(1)
    raise AssertionError(f"not answered again within {rasa_patches.UNREACHABLE_SECONDS + 6:.0f} s of asking every second")
