"""Starting the learning loop from the console, and showing how it goes.

The loop itself is `scripts/retrain.py` (train with the reviewed examples, evaluate on the
held-out set, swap the model into the running Rasa servers); it reports in
var/retrain/status.json: `state` (idle | training | evaluating | swapping | done | failed),
`started_at`, `finished_at`, `reviewed_examples_added`, `heldout_before`, `heldout_after`,
`message`, `history`. The console only reads that file and starts the script: detached (its
own session, so a console restart does not stop it), at the lowest CPU priority (`nice -n
19`: the assistant keeps answering while it trains), with `--rasa-url` for each URL of
$RETRAIN_RASA_URLS (and `--status`, `--reviewed` when the console's are not the script's
defaults). It refuses to start a second run while the status says one is running,
or while the run it started itself has not exited.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parent.parent
RUNNING = ("training", "evaluating", "swapping")
DEFAULT_STATUS = ROOT / "var" / "retrain" / "status.json"  # the script's own defaults
DEFAULT_REVIEWED = ROOT / "data" / "nlu" / "reviewed.yml"


class RetrainUnavailable(RuntimeError):
    """scripts/retrain.py is not there (yet)."""


class RetrainRunning(RuntimeError):
    """A run is going on."""


class Retrainer:
    """The retrain script, its status file and the run this console started."""

    def __init__(self, script: Path, status_file: Path, rasa_urls: list[str],
                 reviewed: Path = DEFAULT_REVIEWED) -> None:
        self.script, self.status_file, self.rasa_urls, self.reviewed = script, status_file, rasa_urls, reviewed
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Retrainer":
        """$RETRAIN_SCRIPT (scripts/retrain.py), $RETRAIN_STATUS (var/retrain/status.json),
        $RETRAIN_RASA_URLS (comma-separated), $REVIEWED_FILE (data/nlu/reviewed.yml)."""
        urls = [url.strip() for url in environ.get("RETRAIN_RASA_URLS", "").split(",") if url.strip()]
        reviewed = Path(environ.get("REVIEWED_FILE") or DEFAULT_REVIEWED)
        return cls(Path(environ.get("RETRAIN_SCRIPT") or ROOT / "scripts" / "retrain.py"),
                   Path(environ.get("RETRAIN_STATUS") or DEFAULT_STATUS), urls,
                   reviewed if reviewed.is_absolute() else ROOT / reviewed)

    def command(self) -> list[str]:
        """The script with a `--rasa-url` per server, and the status and reviewed files when
        they are not the script's defaults (so that both read and write the same files)."""
        command = [sys.executable, str(self.script), *(arg for url in self.rasa_urls for arg in ("--rasa-url", url))]
        if self.status_file.absolute() != DEFAULT_STATUS:
            command += ["--status", str(self.status_file)]
        if self.reviewed.absolute() != DEFAULT_REVIEWED:
            command += ["--reviewed", str(self.reviewed)]
        return command

    def _started_running(self) -> bool:
        return self._process is not None and self._process.poll() is None  # poll() also reaps it

    def status(self) -> dict[str, Any]:
        """The status file's content (or idle), whether the script exists and a run is going on."""
        with self._lock:
            mine = self._started_running()
            exit_code = None if self._process is None or mine else self._process.returncode
        try:
            found = json.loads(self.status_file.read_text(encoding="utf-8"))
            status = found if isinstance(found, dict) else {}
            readable = True
        except FileNotFoundError:
            status, readable = {"state": "idle"}, True
        except (OSError, ValueError):
            status, readable = {"state": "unknown"}, False
        stale = status.get("state") in RUNNING and exit_code is not None  # the run it started died mid-way
        return {**status, "available": self.script.is_file(), "running": mine or (status.get("state") in RUNNING
                                                                                and not stale),
                "readable": readable, "stale": stale, "exit_code": exit_code}

    def start(self) -> list[str]:
        """Start a run; the command started. RetrainUnavailable, RetrainRunning otherwise."""
        if not self.script.is_file():
            shown = self.script.relative_to(ROOT) if self.script.is_relative_to(ROOT) else self.script
            raise RetrainUnavailable(f"重新训练脚本 {shown} 尚未安装，暂时无法重新训练")
        if self.status()["running"]:
            raise RetrainRunning("已有一次重新训练正在进行，请等它结束")
        with self._lock:
            if self._started_running():
                raise RetrainRunning("已有一次重新训练正在进行，请等它结束")
            command = self.command()
            nice = shutil.which("nice")
            self.status_file.parent.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
            with (self.status_file.parent / "console-started.log").open("a", encoding="utf-8") as log:
                self._process = subprocess.Popen([nice, "-n", "19", *command] if nice else command, cwd=ROOT, env=env,
                                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                 start_new_session=True)
            return command
