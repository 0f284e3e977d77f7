"""scripts/retrain.py and production/model_swap.py without training anything.

Training and measuring are replaced by fakes that write a small archive with a metadata.json
(all the swap reads of a model) and return figures shaped as `retrain.figures` returns them
(the current model's, measured); the decision, the counting, the lock, the publish and the
status file are the real ones.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from production import model_swap
from scripts import retrain

# retrain.figures(models/zhuqi.tar.gz) as measured (docs/retrain.md)
CURRENT = {
    "examples": 386, "intent_accuracy": 0.9352, "routing_accuracy": 0.9731, "topic_accuracy": 0.963,
    "out_of_scope_rejection": 0.973, "false_rejection": 0.0, "latency_ms_p50": 11.5, "latency_ms_p95": 30.6,
    "intent_macro_f1": 0.9642,
    "bench": {"routing_accuracy": 0.9532, "out_of_scope_rejection": 0.9167, "bm25_routing_accuracy": 0.5216,
              "bm25_out_of_scope_rejection": 0.5833,
              "by_category": {"colloquial": 0.9684, "english": 0.9062, "followup": 0.9375, "long": 0.9118,
                              "out_of_scope": 0.9167, "traditional": 1.0, "typo": 0.9615}},
}
REVIEWED = """version: "3.1"
nlu:
- intent: tax
  examples: |
    - 小规模纳税人今年有啥子减免
    - 发票在网上咋个申领
- intent: utilities
  examples: |
    - 新店要装水表 找哪个
- synonym: scjg
  examples: |
    - 市监局
"""


def worse(**changes: float) -> dict:
    figures = copy.deepcopy(CURRENT)
    for key, value in changes.items():
        if key.startswith("bench_"):
            figures["bench"][key[6:]] = value
        else:
            figures[key] = value
    return figures


def fake_model(path: Path, model_id: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        data = json.dumps({"model_id": model_id}).encode()
        info = tarfile.TarInfo("metadata.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


# -- the floors ------------------------------------------------------------------------------
def test_the_current_model_passes_every_floor() -> None:
    assert retrain.below_floors(CURRENT, CURRENT) == []


@pytest.mark.parametrize("changes, named", [
    ({"routing_accuracy": 0.874}, "held-out routing accuracy 87.4% < floor 90.0% (current model 97.3%)"),
    ({"intent_macro_f1": 0.85}, "held-out intent macro F1 85.0% < floor 90.0%"),
    ({"out_of_scope_rejection": 0.8}, "held-out out-of-scope rejection 80.0% < floor 85.0%"),
    ({"bench_routing_accuracy": 0.91}, "benchmark routing accuracy 91.0% < floor 92.0%"),
    ({"bench_bm25_out_of_scope_rejection": 0.7}, "benchmark out-of-scope rejection above BM25 21.7% < floor 30.0%"),
])
def test_a_candidate_below_a_floor_is_refused_by_name_and_numbers(changes, named) -> None:
    missed = retrain.below_floors(worse(**changes), CURRENT)
    assert len(missed) == 1 and missed[0].startswith(named)


def test_every_benchmark_category_has_its_floor() -> None:
    figures = worse()
    figures["bench"]["by_category"]["english"] = 0.7
    assert retrain.below_floors(figures, CURRENT) == [
        "benchmark category english 70.0% < floor 80.0% (current model 90.6%)"]


def test_a_figure_not_measured_is_a_miss() -> None:
    figures = worse()
    del figures["intent_macro_f1"]
    assert retrain.below_floors(figures) == ["held-out intent macro F1: not measured (floor 90.0%)"]


def test_the_floors_are_the_ones_the_tests_assert() -> None:
    from tests.nlu import test_heldout

    by_path = {path: floor for path, _, floor in retrain.floors()}
    assert by_path["intent_macro_f1"] == test_heldout.MACRO_F1_FLOOR
    assert by_path["routing_accuracy"] == test_heldout.ROUTING_FLOOR
    assert by_path["out_of_scope_rejection"] == test_heldout.OUT_OF_SCOPE_FLOOR
    bench = retrain.module_constants(retrain.ROOT / "tests" / "nlu" / "test_bench.py")
    assert by_path["bench.routing_accuracy"] == bench["ROUTING_FLOOR"]
    assert by_path["bench.routing_margin"] == bench["MARGIN_OVER_BM25"]


# -- the reviewed examples -------------------------------------------------------------------
def test_reviewed_examples_are_counted_without_synonyms(tmp_path: Path) -> None:
    path = tmp_path / "reviewed.yml"
    assert retrain.reviewed_examples(path) == []
    path.write_text(REVIEWED, encoding="utf-8")
    assert [intent for intent, _ in retrain.reviewed_examples(path)] == ["tax", "tax", "utilities"]


def test_evaluation_questions_in_the_reviewed_file_are_found() -> None:
    from scripts.evaluate import heldout

    question = heldout(retrain.HELDOUT)[0][1]
    assert retrain.leaked(["发票在网上咋个申领", question]) == [question]


# -- the lock --------------------------------------------------------------------------------
def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    first = retrain.RunLock(tmp_path / "retrain.lock").acquire()
    with pytest.raises(retrain.AlreadyRunning, match=f"pid {__import__('os').getpid()}"):
        retrain.RunLock(tmp_path / "retrain.lock").acquire()
    assert retrain.main(["--status", str(tmp_path / "status.json")]) == 2
    first.release()
    retrain.RunLock(tmp_path / "retrain.lock").acquire().release()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "retrain.lock").write_text(str(dead.pid))
    lock = retrain.RunLock(tmp_path / "retrain.lock").acquire()
    assert lock.took_over == dead.pid
    assert (tmp_path / "retrain.lock").read_text() == str(__import__("os").getpid())
    lock.release()


# -- publishing ------------------------------------------------------------------------------
def test_publish_replaces_the_model_in_one_rename(tmp_path: Path) -> None:
    target = fake_model(tmp_path / "zhuqi.tar.gz", "old")
    model_swap.publish(fake_model(tmp_path / "candidates" / "c.tar.gz", "new"), target)
    assert model_swap.model_id(target) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidates", "zhuqi.tar.gz"]


def test_a_failed_copy_leaves_the_old_model_intact(tmp_path: Path) -> None:
    target = fake_model(tmp_path / "zhuqi.tar.gz", "old")
    original = target.read_bytes()

    def half_then_fail(source: Path, destination: Path) -> None:
        destination.write_bytes(source.read_bytes()[:10])
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        model_swap.publish(fake_model(tmp_path / "c.tar.gz", "new"), target, copy=half_then_fail)
    assert target.read_bytes() == original
    assert not (tmp_path / ".zhuqi.tar.gz.tmp").exists()


def test_swap_waits_for_the_new_model_and_measures_the_stall(monkeypatch, tmp_path: Path) -> None:
    import time

    class Answer:
        def __init__(self, status_code: int = 200, body: dict | None = None) -> None:
            self.status_code, self.ok, self.body, self.text = status_code, status_code < 400, body or {}, ""

        def json(self) -> dict:
            return self.body

    def put(*args, **kwargs) -> Answer:
        started = time.monotonic()
        while time.monotonic() - started < 0.3:  # the server loading (time.sleep is patched below)
            pass
        return Answer(204)

    reported = iter(["old", "new"])
    monkeypatch.setattr(model_swap.requests, "put", put)
    monkeypatch.setattr(model_swap.requests, "get", lambda url, **k: Answer(body={"model_id": next(reported, "new")}))
    monkeypatch.setattr(model_swap.requests, "post", lambda *a, **k: Answer())
    monkeypatch.setattr(model_swap.time, "sleep", lambda seconds: None)
    done = model_swap.swap("http://rasa", None, tmp_path / "m.tar.gz", "new")
    assert done["url"] == "http://rasa" and done["put_seconds"] >= 0.3
    assert done["first_parse_seconds"] is not None and done["stalled_seconds"] >= 0


def test_wait_for_pull_waits_for_every_replica(monkeypatch) -> None:
    answers = {"r1": iter(["old", "new"]), "r2": iter(["old", "old", "new"])}
    monkeypatch.setattr(model_swap, "status", lambda url, token: {"model_id": next(answers[url], "new")})
    assert model_swap.wait_for_pull({"r1": "old", "r2": "old"}, "x", timeout=5, pause=0) == {"r1": "new", "r2": "new"}


def test_swap_refused_by_the_server_says_so(monkeypatch, tmp_path: Path) -> None:
    class Refused:
        status_code, text = 401, "NotAuthenticated"

    monkeypatch.setattr(model_swap.requests, "put", lambda *a, **k: Refused())
    monkeypatch.setattr(model_swap.requests, "get", lambda *a, **k: Refused())
    with pytest.raises(model_swap.SwapError, match="401"):
        model_swap.swap("http://rasa", "wrong", tmp_path / "m.tar.gz", "new")


# -- a whole run, training and measuring faked -----------------------------------------------
@pytest.fixture
def run(tmp_path: Path, monkeypatch):
    """Call retrain.main with paths under tmp_path; fake training writes the candidate, fake
    measuring returns `measured[model name]` (default: the current figures)."""
    trained: list[list[str]] = []
    measured: dict[str, dict] = {}

    def fake_child(command: list[str], log, capture: bool = False) -> str:
        trained.append(command)
        if "--finetune" in command and measured.get("refuse_finetune"):
            raise subprocess.CalledProcessError(1, command)
        out = Path(command[command.index("--out") + 1])
        name = command[command.index("--fixed-model-name") + 1]
        fake_model(out / f"{name}.tar.gz", name)
        return ""

    monkeypatch.setattr(retrain, "run_child", fake_child)
    monkeypatch.setattr(retrain, "measure_in_child",
                        lambda model, log: measured.get(model.name.split("-")[-1].split(".")[0], CURRENT))
    model = fake_model(tmp_path / "models" / "zhuqi.tar.gz", "current")
    reviewed = tmp_path / "reviewed.yml"

    def call(*extra: str) -> tuple[int, dict]:
        code = retrain.main(["--status", str(tmp_path / "status.json"), "--model", str(model), "--reviewed",
                             str(reviewed), "--candidates", str(tmp_path / "models" / "candidates"), *extra])
        return code, json.loads((tmp_path / "status.json").read_text(encoding="utf-8"))

    call.trained, call.measured, call.model, call.reviewed = trained, measured, model, reviewed
    return call


def test_a_run_publishes_a_candidate_that_passes_and_writes_every_field(run) -> None:
    run.reviewed.write_text(REVIEWED, encoding="utf-8")
    code, status = run()
    assert code == 0 and status["state"] == "done"
    assert model_swap.model_id(run.model).startswith("candidate-") and status["mode"] == "finetune"
    assert "--finetune" in run.trained[0] and run.trained[0][:3] == ["nice", "-n", "19"]
    assert status["reviewed_examples"] == 3 and status["reviewed_examples_added"] == 3
    assert status["heldout_before"] == CURRENT and status["heldout_after"] == CURRENT
    assert status["published"] == str(run.model) and status["model"].endswith("-finetune.tar.gz")
    assert status["message"].startswith(f"published {status['model']}")
    expected = {"state", "started_at", "finished_at", "reviewed_examples", "reviewed_examples_added",
                "heldout_before", "heldout_after", "message", "model", "history"}
    assert expected <= set(status)
    assert set(status["history"][-1]) >= expected - {"history"} and status["history"][-1]["state"] == "done"


def test_new_examples_are_counted_since_the_last_published_run(run) -> None:
    run.reviewed.write_text(REVIEWED, encoding="utf-8")
    run()
    code, status = run()
    assert code == 0 and status["reviewed_examples_added"] == 0 and run.trained.__len__() == 1
    assert status["message"].startswith("no reviewed example changed")
    run.reviewed.write_text(REVIEWED + "- intent: tax\n  examples: |\n    - 个税咋个申报\n", encoding="utf-8")
    code, status = run()
    assert status["reviewed_examples"] == 4 and status["reviewed_examples_added"] == 1
    assert len(status["history"]) == 3


def test_a_candidate_below_a_floor_keeps_the_old_model(run) -> None:
    run.measured.update(finetune=worse(routing_accuracy=0.85), full=worse(bench_routing_accuracy=0.9))
    before = run.model.read_bytes()
    code, status = run()
    assert code == 1 and status["state"] == "failed" and run.model.read_bytes() == before
    assert not status["published"]
    assert "held-out routing accuracy 85.0% < floor 90.0%" in status["message"]
    assert "benchmark routing accuracy 90.0% < floor 92.0%" in status["message"]
    assert [a["mode"] for a in status["attempts"]] == ["finetune", "full"]


def test_a_finetune_rasa_refuses_falls_back_to_a_full_training(run) -> None:
    run.measured["refuse_finetune"] = True
    code, status = run()
    assert code == 0 and status["mode"] == "full" and "--finetune" not in run.trained[1]
    assert status["attempts"][0]["result"].startswith("training failed")


def test_an_interrupted_run_is_recorded_as_failed(run, tmp_path: Path) -> None:
    (tmp_path / "status.json").write_text(json.dumps({"state": "training", "started_at": "2026-12-01T10:00:00+08:00",
                                                      "pid": 999999, "history": []}), encoding="utf-8")
    code, status = run()
    assert status["history"][0]["state"] == "failed" and "interrupted" in status["history"][0]["message"]
    assert status["history"][-1]["state"] == "done"


def test_the_figures_of_the_published_model_are_not_measured_again(run) -> None:
    run.reviewed.write_text(REVIEWED, encoding="utf-8")
    run.measured["finetune"] = {**worse(routing_accuracy=0.95), "sets_sha256": retrain.evaluation_sets_digest()}
    run()
    code, status = run("--force")
    assert code == 0 and status["heldout_before"]["routing_accuracy"] == 0.95


# -- end to end: the learning loop, under load -----------------------------------------------
# a question today's model cannot place (nlu_fallback: asked back on), and the topic a reviewer gives it
UNPLACED, LABEL = "我们店铺天天跳闸找哪个", "utilities"


def _ask(url: str, sender: str, text: str) -> list[dict]:
    import requests

    reply = requests.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
    reply.raise_for_status()
    return reply.json()


def _card_topic(messages: list[dict]) -> str | None:
    cards = [m["custom"] for m in messages if isinstance(m.get("custom"), dict)
             and m["custom"].get("type") == "service_card"]
    return cards[-1]["topic"] if cards else None


@pytest.mark.model
@pytest.mark.servers
def test_a_labelled_question_is_answered_after_a_retrain_under_load(tmp_path: Path) -> None:
    """The learning loop (issue 14): a question the running model asks back on is labelled
    through the review inbox's writer, `make retrain` fine-tunes a copy of the model on it
    (8 of 80 epochs), measures it against the floors, publishes it and loads it with PUT /model
    while four conversations keep talking — none of their requests fails or gets the apology
    (the model is built off the event loop: rasa_patches 6) — and the same question is then
    answered on the labelled topic."""
    import shutil
    import threading
    import time

    import rasa_patches
    from console.reviewed import Example, ReviewedFile, when
    from tests.conftest import MODEL, ROOT
    from tests.e2e.servers import TOKEN, running

    served = tmp_path / "models" / "zhuqi.tar.gz"
    served.parent.mkdir()
    shutil.copyfile(MODEL, served)
    # the current model's figures as if measured when it was published: not measured again here
    figures = {**CURRENT, "sets_sha256": retrain.evaluation_sets_digest()}
    (tmp_path / "status.json").write_text(json.dumps({"history": [
        {"state": "done", "published": str(served), "model_id": model_swap.model_id(served),
         "heldout_after": figures, "reviewed_examples": 0}]}), encoding="utf-8")
    results: list[tuple[bool, bool]] = []  # (answered, apologised)
    stop = threading.Event()

    def conversation(url: str, n: int) -> None:
        import requests

        asked = 0
        while not stop.is_set():
            asked += 1
            try:  # a new business every 10 questions, as real traffic has
                messages = _ask(url, f"load-{n}-{asked // 10}", "简易注销公告要公示多少天")
                texts = " ".join(m.get("text") or "" for m in messages)
                results.append((bool(messages), rasa_patches.UNAVAILABLE in texts))
            except requests.RequestException:
                results.append((False, False))
            time.sleep(0.25)

    with running(tmp_path, {"MODEL": str(served), "FLOOD_MESSAGES": "1000000"}) as servers:
        before = model_swap.status(servers.url, TOKEN)["model_id"]
        asked_back = _ask(servers.url, "owner-before", UNPLACED)
        assert _card_topic(asked_back) is None and any(m.get("buttons") for m in asked_back), asked_back
        # a reviewer labels it in the inbox (console/review.py writes through ReviewedFile)
        reviewed = tmp_path / "reviewed.yml"
        assert ReviewedFile(reviewed, ROOT).add([Example(UNPLACED, LABEL, "boss", when(time.time()))]) == ["written"]
        talkers = [threading.Thread(target=conversation, args=(servers.url, n)) for n in range(4)]
        for talker in talkers:
            talker.start()
        try:
            code = retrain.main(["--status", str(tmp_path / "status.json"), "--model", str(served),
                                 "--candidates", str(tmp_path / "models" / "candidates"), "--reviewed",
                                 str(reviewed), "--mode", "finetune", "--epoch-fraction", "0.1",
                                 "--rasa-url", servers.url, "--token", TOKEN])
            time.sleep(2)
        finally:
            stop.set()
            for talker in talkers:
                talker.join()
        status = json.loads((tmp_path / "status.json").read_text(encoding="utf-8"))
        assert code == 0, status["message"]
        assert model_swap.status(servers.url, TOKEN)["model_id"] == model_swap.model_id(served) != before
        answered = _ask(servers.url, "owner-after", UNPLACED)
    print(f"learning loop: {len(results)} requests under load, {[a for a, _ in results].count(False)} failed, "
          f"{[b for _, b in results].count(True)} apologies; swap {status['servers'][0]}")  # pytest -s shows it
    assert status["state"] == "done" and status["reviewed_examples_added"] == 1
    assert status["servers"][0]["url"] == servers.url
    assert len(results) > 100  # talked all through the training, the measuring and the swap
    assert [answered for answered, _ in results].count(False) == 0
    assert [apologised for _, apologised in results].count(True) == 0
    assert _card_topic(answered) == LABEL, answered


def test_the_review_inboxs_long_form_is_counted(tmp_path) -> None:
    """console/reviewed.py writes `- text:` items with who labelled them; both forms count."""

    reviewed = tmp_path / "reviewed.yml"
    reviewed.write_text('version: "3.1"\nnlu:\n- intent: utilities\n  examples:\n  - text: 饭店接天然气要多久\n'
                        '    metadata: {labelled_by: boss, labelled_at: "2026-12-01T20:00:00+08:00"}\n'
                        '- intent: tax\n  examples: |\n    - 个体户怎么报税\n', encoding="utf-8")
    assert retrain.reviewed_examples(reviewed) == [("utilities", "饭店接天然气要多久"), ("tax", "个体户怎么报税")]
