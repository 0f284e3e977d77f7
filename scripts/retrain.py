"""Retrain on the reviewed examples in the background, check the floors, swap the model in.

    python scripts/retrain.py [--rasa-url URL ...] [--token TOKEN] [--wait-pull]
                              [--mode auto|finetune|full] [--force] [--status var/retrain/status.json]
    make retrain [RASA_URL=http://127.0.0.1:5005]

One run (docs/retrain.md): count the reviewed examples (data/nlu/reviewed.yml, written by the
console's review inbox) and those new since the last published run; measure the current model
on the held-out set and the robustness benchmark (`heldout_before`); train a candidate into
models/candidates/ in a `nice -n 19` process with TensorFlow on one thread per pool
(fine-tuning the current model, or a full training when Rasa refuses to fine-tune or the
fine-tuned candidate misses a floor); measure
it (`heldout_after`) against the floors tests/nlu/test_heldout.py and test_bench.py assert;
if it passes, publish it as models/zhuqi.tar.gz in one rename and have each `--rasa-url`
server load it (`PUT /model`; `make up-prod` replicas pull the file by themselves,
`--wait-pull` waits for them). Each step is written to the status file the console shows;
a candidate below a floor is never published, and the message says which floor and by how much.
Exit status: 0 published (or nothing new), 1 failed, 2 another run holds the lock.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from production import model_swap  # noqa: E402

VENV = Path(os.environ.get("VENV", ROOT / ".venv"))
PY, RASA = str(VENV / "bin" / "python"), str(VENV / "bin" / "rasa")
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
BENCH = ROOT / "tests" / "nlu" / "bench.yml"
ANSWER_BENCH = ROOT / "tests" / "answers" / "bench.yml"
CATEGORY_FLOOR = 0.8  # tests/nlu/test_bench.py: every category routes mostly right
EPOCH_FRACTION = 0.5
FIGURES_MARK = "FIGURES "
# the training and measuring processes run at the lowest CPU priority; TF's thread pools are
# sized by $RETRAIN_TF_THREADS (0: TensorFlow's default, one per core) — docs/retrain.md
NICE = ["nice", "-n", "19"]
THREAD_VARIABLES = ("TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS",  # read by TensorFlow
                    "TF_INTER_OP_PARALLELISM_THREADS", "TF_INTRA_OP_PARALLELISM_THREADS")  # by Rasa
DEFAULT_TF_THREADS = "1"


# -- the reviewed examples -------------------------------------------------------------------
def reviewed_examples(path: Path) -> list[tuple[str, str]]:
    """(intent, text) of every example in a Rasa NLU YAML file; none when there is no file."""
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    found: list[tuple[str, str]] = []
    for entry in data.get("nlu") or []:
        if not isinstance(entry, dict) or "intent" not in entry:
            continue
        given = entry.get("examples") or []
        if isinstance(given, str):  # the `examples: |` block
            texts = [line.strip()[2:].strip() for line in given.splitlines() if line.strip().startswith("- ")]
        else:  # the list the review inbox writes: `- text: …` with `metadata: {labelled_by, labelled_at}`
            texts = [str(e.get("text", "")).strip() for e in given if isinstance(e, dict)]
        found += [(str(entry["intent"]), text) for text in texts if text]
    return found


def file_digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def leaked(texts: list[str]) -> list[str]:
    """Reviewed texts that are evaluation questions: trained on, they would inflate the figures
    (and tests/nlu/test_data.py, test_bench.py, tests/answers/test_bench.py would fail)."""
    from scripts import evaluate

    held = {text for _, text in evaluate.heldout(HELDOUT)}
    cases = yaml.safe_load(BENCH.read_text(encoding="utf-8"))  # as scripts/bench_nlu.py load_cases reads it
    bench = {q["text"] for q in cases.get("questions", [])} | {t for c in cases.get("conversations", []) for t in c["turns"]}
    answers = yaml.safe_load(ANSWER_BENCH.read_text(encoding="utf-8")) if ANSWER_BENCH.exists() else {}
    asked = {t for c in answers.get("questions", []) for t in (c.get("turns") or [c["text"]]) if len(t) > 6}
    return [text for text in texts if text in held or text in bench or text in asked]


# -- figures and floors ----------------------------------------------------------------------
def figures(model: Path) -> dict:
    """The held-out figures of `make evaluate` plus macro F1 and the robustness benchmark."""
    from rasa.core.agent import Agent
    from sklearn.metrics import f1_score

    from actions import kb
    from scripts import bench_nlu, evaluate

    evaluate.quiet_logs()
    base = kb.load()
    results = asyncio.run(evaluate.parse_all(model, evaluate.heldout(HELDOUT)))
    out = evaluate.metrics(results, base)
    expected, predicted = [e for e, *_ in results], [p for _, _, p, _ in results]
    # as tests/nlu/test_heldout.py computes it: the labels of the held-out set
    out["intent_macro_f1"] = f1_score(expected, predicted, labels=sorted(set(expected)), average="macro",
                                      zero_division=0)
    bench = asyncio.run(bench_nlu.benchmark(Agent.load(str(model)), base, bench_nlu.load_cases(BENCH)))
    ours, search = bench["assistant"], bench["bm25"]
    out["bench"] = {"routing_accuracy": ours["routing_accuracy"],
                    "out_of_scope_rejection": ours["out_of_scope_rejection"],
                    "bm25_routing_accuracy": search["routing_accuracy"],
                    "bm25_out_of_scope_rejection": search["out_of_scope_rejection"],
                    "by_category": ours["by_category"]}
    out["sets_sha256"] = evaluation_sets_digest()
    return _rounded(out)


def evaluation_sets_digest() -> str:
    """Figures measured on other evaluation sets are not comparable: they carry this digest."""
    return hashlib.sha256(HELDOUT.read_bytes() + BENCH.read_bytes()).hexdigest()[:16]


def _rounded(value):
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return round(value, 4) if isinstance(value, float) else value


def module_constants(path: Path) -> dict[str, float]:
    """The module-level number constants of a test file, read without importing it (importing
    tests/nlu/test_bench.py loads TensorFlow)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, (int, float))
            for target in node.targets if isinstance(target, ast.Name)}


def floors() -> list[tuple[str, str, float]]:
    """(figure path, name, floor) of every floor the test suite asserts on NLU, read from the
    tests themselves so the two never disagree."""
    held = module_constants(ROOT / "tests" / "nlu" / "test_heldout.py")
    bench = module_constants(ROOT / "tests" / "nlu" / "test_bench.py")
    return [("intent_macro_f1", "held-out intent macro F1", held["MACRO_F1_FLOOR"]),
            ("routing_accuracy", "held-out routing accuracy", held["ROUTING_FLOOR"]),
            ("out_of_scope_rejection", "held-out out-of-scope rejection", held["OUT_OF_SCOPE_FLOOR"]),
            ("bench.routing_accuracy", "benchmark routing accuracy", bench["ROUTING_FLOOR"]),
            ("bench.out_of_scope_rejection", "benchmark out-of-scope rejection", bench["OUT_OF_SCOPE_FLOOR"]),
            ("bench.routing_margin", "benchmark routing above BM25", bench["MARGIN_OVER_BM25"]),
            ("bench.out_of_scope_margin", "benchmark out-of-scope rejection above BM25", bench["MARGIN_OVER_BM25"])]


def below_floors(after: dict, before: dict | None = None) -> list[str]:
    """One sentence per floor the candidate misses (empty: it may be published)."""
    def value(figs: dict | None, path: str) -> float | None:
        if not figs:
            return None
        bench = figs.get("bench") or {}
        derived = {"bench.routing_margin": ("routing_accuracy", "bm25_routing_accuracy"),
                   "bench.out_of_scope_margin": ("out_of_scope_rejection", "bm25_out_of_scope_rejection")}
        if path in derived:
            ours, search = (bench.get(key) for key in derived[path])
            return None if ours is None or search is None else ours - search
        return bench.get(path[6:]) if path.startswith("bench.") else figs.get(path)

    checks = list(floors())
    checks += [(f"bench.by_category.{c}", f"benchmark category {c}", CATEGORY_FLOOR)
               for c in sorted((after.get("bench") or {}).get("by_category") or {})]
    missed = []
    for path, name, floor in checks:
        if path.startswith("bench.by_category."):
            category = path.rsplit(".", 1)[1]
            got = after["bench"]["by_category"][category]
            was = ((before or {}).get("bench") or {}).get("by_category", {}).get(category)
        else:
            got, was = value(after, path), value(before, path)
        if got is None:
            missed.append(f"{name}: not measured (floor {floor:.1%})")
        elif got < floor:
            missed.append(f"{name} {got:.1%} < floor {floor:.1%}" + (f" (current model {was:.1%})" if was is not None else ""))
    return missed


def measure_in_child(model: Path, log: Path) -> dict:
    """figures(model) in a `nice -n 19` process of its own: TF stays out of this process."""
    with open(log, "ab") as handle:
        output = run_child([*NICE, PY, str(Path(__file__).resolve()), "--figures", str(model)], handle,
                           capture=True)
    for line in reversed(output.splitlines()):
        if line.startswith(FIGURES_MARK):
            return json.loads(line[len(FIGURES_MARK):])
    raise RuntimeError(f"measuring {model.name} printed no figures (log: {log})")


# -- training --------------------------------------------------------------------------------
def train_command(mode: str, name: str, candidates: Path, current: Path, reviewed: Path,
                  epoch_fraction: float = EPOCH_FRACTION) -> list[str]:
    command = [*NICE, RASA, "train", "--out", str(candidates), "--fixed-model-name", name, "--data", str(ROOT / "data")]
    if reviewed.exists() and ROOT / "data" not in reviewed.resolve().parents:
        command.append(str(reviewed))  # a reviewed file kept outside data/ (experiments)
    if mode == "finetune":
        command += ["--finetune", str(current), "--epoch-fraction", str(epoch_fraction)]
    return command


def child_environment() -> dict[str, str]:
    threads = os.environ.get("RETRAIN_TF_THREADS", DEFAULT_TF_THREADS)
    pools = dict.fromkeys(THREAD_VARIABLES, threads) if threads not in ("", "0") else {}
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
            "RASA_TELEMETRY_ENABLED": os.environ.get("RASA_TELEMETRY_ENABLED", "false"), **pools}


def run_child(command: list[str], log, capture: bool = False) -> str:
    """Run a child in its own session; kill its whole group if this run is stopped."""
    process = subprocess.Popen(command, cwd=ROOT, env=child_environment(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE if capture else log, stderr=log, start_new_session=True)
    try:
        output, _ = process.communicate()
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command[3:5])
    return output.decode("utf-8", "replace") if capture else ""


def log_tail(log: Path, lines: int = 3) -> str:
    try:
        text = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " | ".join(text[-lines:])[-400:]


def keep_latest(candidates: Path, keep: int = 3) -> None:
    """Candidates are 57 MB each: keep the latest few (the published one is a copy)."""
    found = sorted(candidates.glob("candidate-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    for old in found[:-keep]:
        old.unlink(missing_ok=True)


# -- the status file and the lock --------------------------------------------------------------
ACTIVE = ("training", "evaluating", "swapping")
RUN_FIELDS = ("state", "started_at", "finished_at", "reviewed_examples", "reviewed_examples_added",
              "heldout_before", "heldout_after", "message", "model", "published", "model_id", "mode",
              "attempts", "servers", "reviewed_sha256", "pid")
HISTORY_LIMIT = 50


def now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


class StatusFile:
    """var/retrain/status.json: the run in progress (or the last one) and the runs before it.

    Written whole to a file beside it and renamed over it, so a reader (the console) never
    sees half a file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}
        self.data = {**dict.fromkeys(RUN_FIELDS), "state": "idle", **self.data}
        self.data.setdefault("history", [])

    def update(self, **fields) -> None:
        self.data.update(fields)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(json.dumps(self.data, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(temporary, self.path)

    def begin(self, **fields) -> None:
        """A new run: the previous one (if it was never finished) goes to the history first."""
        if self.data.get("started_at") and self.data.get("state") in ACTIVE:
            self.data["message"] = f"interrupted: process {self.data.get('pid')} stopped during {self.data['state']}"
            self.data["state"], self.data["finished_at"] = "failed", self.data.get("finished_at") or now()
            self._archive()
        self.update(**{**dict.fromkeys(RUN_FIELDS), "state": "idle", "started_at": now(), "pid": os.getpid(),
                       "published": False, **fields})

    def finish(self, state: str, message: str, **fields) -> None:
        self.data.update(state=state, message=message, finished_at=now(), **fields)
        self._archive()
        self.update()

    def _archive(self) -> None:
        run = {key: self.data.get(key) for key in RUN_FIELDS}
        self.data["history"] = [*self.data.get("history", []), run][-HISTORY_LIMIT:]

    def last_published(self) -> dict | None:
        return next((run for run in reversed(self.data["history"]) if run.get("published")), None)


class AlreadyRunning(RuntimeError):
    """Another run holds the lock."""


class RunLock:
    """var/retrain/retrain.lock: an exclusive `flock` held for the whole run, and the pid in it.

    The kernel drops a dead process's `flock`, so a lock file left by a run that was killed
    (its pid no longer running) is taken over by the next run, and two runs can never both
    think they took it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = None
        self.took_over: int | None = None  # the pid of a stale lock taken over

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise AlreadyRunning(f"another retrain is running (pid {holder or '?'}, lock {self.path})") from None
        handle.seek(0)
        stale = handle.read().strip()
        self.took_over = int(stale) if stale.isdigit() and int(stale) != os.getpid() else None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle
        return self

    def release(self) -> None:
        if self.handle:
            self.handle.seek(0)
            self.handle.truncate()
            self.handle.close()
            self.handle = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *_) -> None:
        self.release()


# -- one run ---------------------------------------------------------------------------------
class Retrain:
    def __init__(self, args: argparse.Namespace, status: StatusFile, lock: RunLock) -> None:
        self.args, self.status, self.lock = args, status, lock
        self.logs = args.status.parent / "logs"

    def run(self) -> int:
        args, status = self.args, self.status
        status.begin()
        examples = reviewed_examples(args.reviewed)
        last = status.last_published()
        previous = (last or {}).get("reviewed_examples") or 0
        digest = file_digest(args.reviewed)
        status.update(reviewed_examples=len(examples), reviewed_examples_added=max(0, len(examples) - previous),
                      reviewed_sha256=digest)
        try:
            leaks = leaked([text for _, text in examples])
            if leaks:
                status.finish("failed", f"{len(leaks)} reviewed examples are evaluation questions (tests/nlu/"
                                        f"heldout.yml, bench.yml, tests/answers/bench.yml); remove them from "
                                        f"{args.reviewed.name}: {'、'.join(leaks[:5])}")
                return 1
            if not args.force and last and last.get("reviewed_sha256") == digest and args.model.exists():
                status.finish("done", "no reviewed example changed since the last published retrain: nothing "
                                      "trained (--force retrains anyway)")
                return 0
            return self.train_and_swap(last)
        except KeyboardInterrupt:
            status.finish("failed", f"stopped during {status.data['state']}"
                          + ("" if status.data.get("published") else "; the current model is unchanged"))
            return 1
        except Exception as error:  # the console shows it; the current model stays
            status.finish("failed", f"error during {status.data['state']}: {type(error).__name__}: {error}"
                          + ("" if status.data.get("published") else "; the current model is unchanged"))
            return 1

    def before_figures(self, last: dict | None, log: Path) -> dict | None:
        """The current model's figures: those measured when it was published, else measured now."""
        if not self.args.model.exists():
            return None
        current = model_swap.model_id(self.args.model)
        kept = (last or {}).get("heldout_after") or {}
        if last and last.get("model_id") == current and kept.get("sets_sha256") == evaluation_sets_digest():
            return kept
        self.status.update(state="evaluating", message="measuring the current model")
        return measure_in_child(self.args.model, log)

    def train_and_swap(self, last: dict | None) -> int:
        args, status = self.args, self.status
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.logs.mkdir(parents=True, exist_ok=True)
        args.candidates.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"candidate-{stamp}.log"
        before = self.before_figures(last, log)
        status.update(heldout_before=before)
        if args.mode != "auto":
            modes = [args.mode]
        else:  # fine-tune when Rasa allows it; a full training when it refuses or misses a floor
            modes = ["finetune", "full"] if args.model.exists() else ["full"]
        attempts: list[dict] = []
        candidate = None
        for mode in modes:
            name = f"candidate-{stamp}-{mode}"
            status.update(state="training", mode=mode, model=f"{name}.tar.gz", attempts=attempts,
                          message=f"training {name} ({mode}, nice 19; log {log.name})")
            started = time.monotonic()
            try:
                with open(log, "ab") as handle:
                    run_child(train_command(mode, name, args.candidates, args.model, args.reviewed,
                                            args.epoch_fraction), handle)
            except subprocess.CalledProcessError:
                attempts.append({"mode": mode, "seconds": round(time.monotonic() - started),
                                 "result": f"training failed: {log_tail(log)}"})
                continue
            seconds = round(time.monotonic() - started)
            status.update(state="evaluating", message=f"measuring {name} against the floors")
            after = measure_in_child(args.candidates / f"{name}.tar.gz", log)
            missed = below_floors(after, before)
            attempts.append({"mode": mode, "seconds": seconds,
                             "result": "passed the floors" if not missed else "below floors: " + "; ".join(missed)})
            status.update(heldout_after=after, attempts=attempts)
            if not missed:
                candidate = args.candidates / f"{name}.tar.gz"
                break
        keep_latest(args.candidates)
        if candidate is None:
            status.finish("failed", "kept the current model: "
                          + " / ".join(f"{a['mode']}: {a['result']}" for a in attempts))
            return 1
        return self.swap(candidate, attempts[-1], before, status.data["heldout_after"])

    def swap(self, candidate: Path, attempt: dict, before: dict | None, after: dict) -> int:
        args, status = self.args, self.status
        status.update(state="swapping", message=f"publishing {candidate.name} as {args.model.name}")
        replicas = replica_urls() if args.wait_pull else []
        pulled_before = {url: (model_swap.status(url, args.token) or {}).get("model_id") for url in replicas}
        new_id = model_swap.model_id(candidate)
        model_swap.publish(candidate, args.model)
        status.update(published=str(args.model), model_id=new_id)
        servers, problems = [], []
        for url in args.rasa_url:
            status.update(message=f"loading {candidate.name} into {url} (PUT /model)")
            try:
                servers.append(model_swap.swap(url, args.token, args.model, new_id))
            except model_swap.SwapError as error:
                problems.append(str(error))
        if replicas:
            status.update(message=f"waiting for {len(replicas)} replicas to pull the model")
            pulled = model_swap.wait_for_pull(pulled_before, args.token, timeout=PULL_TIMEOUT)
            for url, model in pulled.items():
                servers.append({"url": url, "model_id": model, "pulled": model == new_id})
                if model != new_id:
                    problems.append(f"{url}: still reports {model} {PULL_TIMEOUT:.0f} s after publishing")
        status.update(servers=servers)
        summary = (f"published {candidate.name} ({attempt['mode']}, trained in {attempt['seconds']} s): "
                   + ", ".join(f"{label} {_pct(before, key)} → {_pct(after, key)}" for label, key in SUMMARY))
        if problems:
            status.finish("failed", summary + "; not loaded everywhere: " + "; ".join(problems))
            return 1
        stalls = [server["stalled_seconds"] for server in servers if "stalled_seconds" in server]
        status.finish("done", summary + (f"; loaded by {len(servers)} server(s)" if servers else "")
                      + (f", which stopped answering for up to {max(stalls):.1f} s while loading it"
                         if stalls and max(stalls) >= STALL_WORTH_SAYING else ""))
        return 0


PULL_TIMEOUT = 60.0
STALL_WORTH_SAYING = 2.0  # seconds: Rasa 3.6 without production.model_swap's patch stalls 5-8 s
SUMMARY = [("held-out routing", "routing_accuracy"), ("macro F1", "intent_macro_f1"),
           ("out of scope", "out_of_scope_rejection"), ("benchmark routing", "bench.routing_accuracy")]


def _pct(figs: dict | None, key: str) -> str:
    value = (figs or {}).get("bench", {}).get(key[6:]) if key.startswith("bench.") else (figs or {}).get(key)
    return "—" if value is None else f"{value:.1%}"


def replica_urls() -> list[str]:
    """The Rasa replicas of `make up-prod` (production/cluster.py Ports, same environment)."""
    from production import cluster

    topology = cluster.from_environment()
    return [f"http://127.0.0.1:{port}" for port in topology.ports.rasa(topology.replicas)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/retrain.py", description=__doc__.splitlines()[0])
    parser.add_argument("--rasa-url", action="append", default=[],
                        help="a Rasa server (make run) to load the new model with PUT /model; repeatable")
    parser.add_argument("--token", default=os.environ.get("RASA_AUTH_TOKEN") or None,
                        help="Rasa's HTTP API token (default $RASA_AUTH_TOKEN)")
    parser.add_argument("--status", type=Path, default=ROOT / "var" / "retrain" / "status.json")
    parser.add_argument("--wait-pull", action="store_true",
                        help=f"wait up to {PULL_TIMEOUT:.0f} s for the make up-prod replicas to pull the model")
    parser.add_argument("--mode", choices=["auto", "finetune", "full"], default="auto",
                        help="auto: fine-tune, then a full training if Rasa refuses or a floor is missed")
    parser.add_argument("--force", action="store_true", help="retrain even when no reviewed example changed")
    parser.add_argument("--epoch-fraction", type=float, default=EPOCH_FRACTION,
                        help=f"share of config.yml's epochs a fine-tuning runs (default {EPOCH_FRACTION})")
    parser.add_argument("--reviewed", type=Path, default=ROOT / "data" / "nlu" / "reviewed.yml")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "zhuqi.tar.gz",
                        help="the served model: fine-tuned from, measured as before, replaced")
    parser.add_argument("--candidates", type=Path, default=ROOT / "models" / "candidates")
    parser.add_argument("--figures", type=Path, help=argparse.SUPPRESS)  # the measuring child
    return parser.parse_args(argv)


def _stopped(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a SIGTERM (the console stopping the run) ends it as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.figures:
        print(FIGURES_MARK + json.dumps(figures(args.figures), ensure_ascii=False), flush=True)
        return 0
    args.model, args.candidates = args.model.absolute(), args.candidates.absolute()
    try:
        lock = RunLock(args.status.parent / "retrain.lock").acquire()
    except AlreadyRunning as error:
        print(error, file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        code = Retrain(args, StatusFile(args.status), lock).run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        lock.release()
    print(json.dumps({k: StatusFile(args.status).data[k] for k in ("state", "message")}, ensure_ascii=False))
    return code


if __name__ == "__main__":
    sys.exit(main())
