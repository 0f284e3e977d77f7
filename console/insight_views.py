"""The dashboard (/insight) and the review inbox (/insight/review) of the staff console.

Both read the insight package (insight/): each request first brings the turns up to date
from Rasa's tracker store (insight.sync, the same call `make insight` makes; at most once per
$INSIGHT_SYNC_SECONDS per console, concurrent page loads waiting for the one sync under way,
and syncs of several consoles safe by insight's own cursor check), then computes the tables.
The tracker store is $TRACKER_DB_URL, else the `tracker_store` of $ENDPOINTS (endpoints.yml),
read as insight/tracker.py reads it: the console runs beside Rasa with the same files and
DATABASE_URL. A tracker store that cannot be read leaves the turns stored so far, and says so.

Who sees what is decided here, never by the page: a supervisor sees every department and may
filter one; a specialist sees their own department's rows only, and asking for another
department is refused (403), not silently narrowed. The inbox follows the same rule, and so
does labelling: a specialist labels only questions attributed to their department; the ones
that name no department (asked back, declined) are the supervisors'. Only supervisors start
a retrain.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from console import names, review
from console.accounts import StaffMember
from console.retrain import Retrainer, RetrainRunning, RetrainUnavailable
from console.reviewed import ReviewedFile
from insight import tables
from insight.sources import Filters, Sources
from insight.store import InsightStore
from insight.sync import sync
from insight.tracker import DEFAULT_ENDPOINTS, ROOT, TrackerStoreError, tracker_url

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
OUTCOMES = {"answered": "已回答", "asked_back": "反问澄清", "out_of_scope": "婉拒（超出范围）", "handed_over": "转人工"}
Handler = Callable[..., Awaitable[HTTPResponse]]


class Refused(Exception):
    """A request the API answers with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Settings:
    tracker_db_url: str | None  # $TRACKER_DB_URL; else endpoints.yml's tracker_store
    endpoints: Path
    database_url: str | None  # $DATABASE_URL: turns, cases, ratings (else var/cases.db, var/channels.db)
    reviewed_file: Path
    sync_seconds: float
    target_hours: float

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Settings":
        endpoints = Path(environ.get("ENDPOINTS") or DEFAULT_ENDPOINTS)
        reviewed = Path(environ.get("REVIEWED_FILE") or ROOT / "data" / "nlu" / "reviewed.yml")
        return cls(environ.get("TRACKER_DB_URL") or None, endpoints if endpoints.is_absolute() else ROOT / endpoints,
                   environ.get("DATABASE_URL") or None, reviewed if reviewed.is_absolute() else ROOT / reviewed,
                   float(environ.get("INSIGHT_SYNC_SECONDS") or 5),
                   tables.target_hours(dict(environ)))


class Insight:
    """The insight store and sources (opened on first use), the sync and the inbox."""

    def __init__(self, settings: Settings, retrainer: Retrainer) -> None:
        self.settings, self.retrainer = settings, retrainer
        self.review = review.Inbox(lambda: self.opened()[0], ReviewedFile(settings.reviewed_file, ROOT))
        self._store: InsightStore | None = None
        self._sources: Sources | None = None
        self._opening = threading.Lock()
        self._sync_lock: asyncio.Lock | None = None
        self._synced: dict[str, Any] = {"ok": False, "message": "尚未同步", "at": None, "turns": 0}
        self._synced_at = float("-inf")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "Insight":
        return cls(Settings.from_environ(environ), Retrainer.from_environ(environ))

    def opened(self) -> tuple[InsightStore, Sources]:
        with self._opening:
            if self._store is None:
                self._store = InsightStore(self.settings.database_url)
                self._sources = Sources.of(self.settings.database_url)
        return self._store, self._sources

    @staticmethod
    async def run(function: Callable, *args: Any) -> Any:
        """Blocking SQL and file work off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, partial(function, *args))

    # sync ---------------------------------------------------------------------------------
    def _sync_now(self) -> dict[str, Any]:
        store, _ = self.opened()
        try:
            url = self.settings.tracker_db_url or tracker_url(self.settings.endpoints)
            done = sync(url, store)
        except TrackerStoreError as problem:
            return {"ok": False, "message": f"未能读取对话记录库：{problem}；以下为已同步的数据", "turns": 0}
        except Exception as problem:  # noqa: BLE001 - the stored turns are still worth showing
            logger.exception("insight sync failed")
            return {"ok": False, "message": f"同步对话记录失败（{type(problem).__name__}）；以下为已同步的数据", "turns": 0}
        return {"ok": True, "message": f"已同步：新增 {done.turns} 条对话记录", "turns": done.turns}

    async def sync(self) -> dict[str, Any]:
        """Bring the turns up to date, unless a sync finished within $INSIGHT_SYNC_SECONDS."""
        if self._sync_lock is None:
            self._sync_lock = asyncio.Lock()
        async with self._sync_lock:
            if time.monotonic() - self._synced_at >= self.settings.sync_seconds:
                self._synced = {**await self.run(self._sync_now), "at": time.time()}
                self._synced_at = time.monotonic() if self._synced["ok"] else float("-inf")
            return dict(self._synced)

    # filters ------------------------------------------------------------------------------
    @staticmethod
    def filters(member: StaffMember, args: Mapping[str, Any]) -> Filters:
        """The request's filters, the department decided by the member's role."""
        def day(name: str) -> date | None:
            value = (args.get(name) or "").strip()
            try:
                return date.fromisoformat(value) if value else None
            except ValueError:
                raise Refused(400, f"日期格式应为 YYYY-MM-DD：{value[:20]}") from None

        start, end = day("from"), day("to")
        if start and end and start > end:
            raise Refused(400, "开始日期晚于结束日期")
        department = (args.get("department") or "").strip() or None
        if department and department not in names.departments():
            raise Refused(400, "未知的部门")
        if not member.is_supervisor:
            if not member.department:
                raise Refused(403, "该账号没有所属部门，无权查看数据")
            if department and department != member.department:
                raise Refused(403, "专员只能查看本部门的数据")
            department = member.department
        channel = (args.get("channel") or "").strip() or None
        if channel and channel not in names.CHANNELS:
            raise Refused(400, "未知的渠道")
        return Filters(start, end, department, channel)

    @staticmethod
    def applied(filters: Filters) -> dict[str, Any]:
        return {"from": filters.start.isoformat() if filters.start else "",
                "to": filters.end.isoformat() if filters.end else "",
                "department": filters.department or "", "channel": filters.channel or ""}

    # tables -------------------------------------------------------------------------------
    def table(self, name: str, filters: Filters) -> tuple[type, list[Any]]:
        function, row_class = tables.TABLES[name]
        _, sources = self.opened()
        if name == "cases":
            return row_class, tables.case_table(sources, filters, target=self.settings.target_hours)
        return row_class, function(sources, filters)

    def table_json(self, name: str, filters: Filters) -> dict[str, Any]:
        row_class, rows = self.table(name, filters)
        return {"columns": tables.columns(row_class), "rows": [asdict(row) for row in rows]}

    def all_tables(self, filters: Filters) -> dict[str, Any]:
        return {name: self.table_json(name, filters) for name in tables.TABLES}

    def csv_text(self, name: str, filters: Filters) -> str:
        """The table as `make insight` prints it: its columns' names, then the rows."""
        row_class, rows = self.table(name, filters)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(tables.columns(row_class))
        writer.writerows(["" if value is None else value for value in asdict(row).values()] for row in rows)
        return out.getvalue()

    @staticmethod
    def labels() -> dict[str, Any]:
        """The names the page shows for the ids the tables hold."""
        return {"departments": names.departments(), "topics": names.topics(), "channels": names.CHANNELS,
                "outcomes": OUTCOMES, "reasons": review.REASONS}

def _threshold(args: Mapping[str, Any]) -> float:
    try:
        value = float(args.get("threshold") or review.DEFAULT_THRESHOLD)
    except ValueError:
        raise Refused(400, "相似度阈值应为 0.1 到 1 之间的数") from None
    if not 0.1 <= value <= 1.0:
        raise Refused(400, "相似度阈值应为 0.1 到 1 之间的数")
    return value


def register(app: Sanic, insight: Insight) -> None:
    """The pages and the /api/insight routes (the session check is the app's middleware)."""

    def answering(handler: Handler) -> Handler:
        async def wrapped(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            try:
                return await handler(request, *args, **kwargs)
            except Refused as refused:
                return response.json({"error": str(refused)}, status=refused.status)
        wrapped.__name__ = handler.__name__
        return wrapped

    async def page(_: Request) -> HTTPResponse:
        return await response.file(STATIC / "insight.html", mime_type="text/html; charset=utf-8")

    async def dashboard(request: Request) -> HTTPResponse:
        filters = insight.filters(request.ctx.member, request.args)
        synced = await insight.sync()
        return response.json({"filters": insight.applied(filters), "sync": synced, "labels": insight.labels(),
                              "target_hours": insight.settings.target_hours,
                              "tables": await insight.run(insight.all_tables, filters)})

    async def one_table(request: Request, name: str) -> HTTPResponse:
        stem, as_csv = (name[:-4], True) if name.endswith(".csv") else (name, False)
        if stem not in tables.TABLES:
            raise Refused(404, "没有这个统计表")
        filters = insight.filters(request.ctx.member, request.args)
        synced = await insight.sync()
        if as_csv:
            return response.text(await insight.run(insight.csv_text, stem, filters),
                                 content_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="insight-{stem}.csv"'})
        return response.json({"table": stem, "filters": insight.applied(filters), "sync": synced,
                              **await insight.run(insight.table_json, stem, filters)})

    async def inbox(request: Request) -> HTTPResponse:
        member = request.ctx.member
        filters, threshold = insight.filters(member, request.args), _threshold(request.args)
        synced = await insight.sync()
        found = await insight.run(insight.review.groups, member, filters, request.args.get("labelled") == "1",
                                  threshold)
        retrain = await insight.run(insight.retrainer.status)
        return response.json({"filters": insight.applied(filters), "sync": synced, **found, "labels": insight.labels(),
                              "choices": insight.review.choices(), "retrain": retrain,
                              "may_retrain": member.is_supervisor})

    async def label(request: Request) -> HTTPResponse:
        body = request.json if isinstance(request.json, dict) else {}
        raw = body.get("items") if isinstance(body.get("items"), list) else []
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
            raise Refused(400, "items 应为问题编号的列表")
        try:
            done = await insight.run(insight.review.label, request.ctx.member, raw, str(body.get("label") or ""))
        except ValueError as bad:
            raise Refused(400, str(bad)) from None
        except LookupError as missing:
            raise Refused(404, str(missing).strip("'\"")) from None
        except PermissionError as refused:
            raise Refused(403, str(refused)) from None
        return response.json(done)

    async def retrain_status(_: Request) -> HTTPResponse:
        return response.json(await insight.run(insight.retrainer.status))

    async def retrain(request: Request) -> HTTPResponse:
        if not request.ctx.member.is_supervisor:
            raise Refused(403, "只有主管可以发起重新训练")
        try:
            await insight.run(insight.retrainer.start)
        except RetrainUnavailable as problem:
            raise Refused(503, str(problem)) from None
        except RetrainRunning as problem:
            raise Refused(409, str(problem)) from None
        return response.json({"started": True, "status": await insight.run(insight.retrainer.status)}, status=202)

    app.add_route(page, "/insight", methods=["GET"], name="insight_page")
    app.add_route(page, "/insight/review", methods=["GET"], name="insight_review_page")
    app.add_route(answering(dashboard), "/api/insight", methods=["GET"], name="insight_dashboard")
    app.add_route(answering(inbox), "/api/insight/review", methods=["GET"], name="insight_inbox")
    app.add_route(answering(label), "/api/insight/review/label", methods=["POST"], name="insight_label")
    app.add_route(answering(retrain_status), "/api/insight/retrain", methods=["GET"], name="insight_retrain_status")
    app.add_route(answering(retrain), "/api/insight/retrain", methods=["POST"], name="insight_retrain")
    app.add_route(answering(one_table), "/api/insight/<name:[a-z_.]+>", methods=["GET"],
                  name="insight_table")
