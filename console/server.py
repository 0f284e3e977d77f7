"""The staff console's web app: pages, a JSON API, session checks on every request.

Every path but the login page, the login call and the health check needs a live session
cookie; API calls that change anything must be JSON from the console's own origin (a form
on another site can send neither). Specialists see and act on their own department's cases;
supervisors see all and may reassign. A 差评 case is followed up by its specialist in three
steps (回访核实, 整改, 反馈); the 反馈 is sent to the business as a reply and must be delivered
before the case can be solved. The queue counts, per case, the open cases of its client (a flood
shows); a supervisor hands all of them back at once (`close-same-client`).

Every database call runs in a worker thread (`off_loop`), never on the event loop: while
PostgreSQL restarts a connection is retried for seconds (cases/schema.py), and that must hold up
only the request that waits for it, not every other staff member's request and the health check.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.exc import SQLAlchemyError

from cases.repository import (FOLLOWUP_REASON, FOLLOWUP_STEPS, OPEN, STATUSES, Case, CaseConflict, CaseNotFound,
                              CaseRepository, FollowupIncomplete)
from channels import clients
from console import insight_views, names, transcript, views
from console.accounts import SESSION_SECONDS, Accounts, StaffMember
from console.login_throttle import Throttled
from console.rasa_client import DeliveryRefused, RasaClient, RasaUnavailable

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
QUEUE_PAGE = 100  # cases per page of the queue
# the one file of console/node_modules served (npm ci in console/, from its package-lock.json)
ECHARTS = Path(__file__).resolve().parent / "node_modules" / "echarts" / "dist" / "echarts.min.js"
COOKIE = "zhuqi_console"
PUBLIC = {"/login", "/api/login", "/healthz"}
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".html": "text/html; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
MAX_TEXT = 2000
RESOLVED_INTENT = "handoff_resolved"  # its rule runs action_ask_service_rating
HANDED_BACK = "工作人员已把对话交回智能助手，您可以继续提问；需要人工时，随时发送「转人工」。"
PHONE_FEEDBACK = "【电话答复】"  # a 反馈 given by telephone, not sent through the channel
NO_FEEDBACK = "差评案件须先完成「反馈」（把核实和整改的结果回复企业，并送达）才能办结。"
NO_CLIENT = "该案件没有来源标识，无法批量关闭"
BULK_RASA_CALLS = 8  # conversations resumed on Rasa at once when a flood is closed
Handler = Callable[..., Awaitable[HTTPResponse]]


def client_address(request: Request) -> str:
    """The address a login comes from, as the channels read it (nginx's X-Real-IP from loopback)."""
    return clients.address(request.conn_info.client_ip if request.conn_info else None,
                           request.headers.get("x-real-ip"))


async def off_loop(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking (database) call in a worker thread; its exceptions are raised here."""
    return await asyncio.to_thread(function, *args, **kwargs)


def error(status: int, message: str) -> HTTPResponse:
    return response.json({"error": message}, status=status)


class Console:
    """The app's state: the cases, the accounts and the way to Rasa.

    The async methods are the ones the routes call; the plain ones block on the database and
    run in a worker thread (`off_loop`), several calls that belong together in one."""

    def __init__(self, cases: CaseRepository, accounts: Accounts, rasa: RasaClient, secure_cookie: bool = False):
        self.cases, self.accounts, self.rasa, self.secure_cookie = cases, accounts, rasa, secure_cookie

    def staff_names(self) -> dict[str, str]:
        return {member.username: member.name for member, _ in self.accounts.members()}

    async def case_for(self, member: StaffMember, case_id: int) -> Case:
        """The case if the member may see it: CaseNotFound / PermissionError otherwise."""
        case = await off_loop(self.cases.get, case_id)
        if not member.may_see(case.department):
            raise PermissionError("该案件属于其他部门，您无权查看")
        return case

    # reading ------------------------------------------------------------------------------
    async def queue(self, member: StaffMember, status: str, department: str | None, page: int = 1) -> dict[str, Any]:
        """One page of the queue and how many cases it holds in all (no case hidden by a cap)."""
        statuses = {"open": OPEN, "all": STATUSES}.get(status, (status,))
        departments = [department] if member.is_supervisor and department else None
        if not member.is_supervisor:
            departments = [member.department or ""]
        return await off_loop(self._queue_page, member, statuses, departments, page)

    def _queue_page(self, member: StaffMember, statuses: tuple[str, ...], departments: list[str] | None,
                    page: int) -> dict[str, Any]:
        """The queue's reads in one go: the names, the size, the page and its clients' counts."""
        staff_names, now = self.staff_names(), time.time()
        total = self.cases.queue_size(statuses, departments)
        pages = max(1, -(-total // QUEUE_PAGE))
        page = min(max(1, page), pages)
        found = self.cases.queue(statuses, departments, limit=QUEUE_PAGE, offset=(page - 1) * QUEUE_PAGE)
        counts = self.same_client_open(member, found)  # one grouped query for the page
        return {"now": now, "total": total, "page": page, "pages": pages, "page_size": QUEUE_PAGE,
                "cases": [views.summary(case, staff_names, now, counts) for case in found]}

    def same_client_open(self, member: StaffMember, found: list[Case]) -> dict[str, int]:
        """Open cases per client of these cases, counted where the member sees cases: all
        departments for a supervisor (whatever the filter: what close-same-client would close),
        the own department for a specialist."""
        departments = None if member.is_supervisor else [member.department or ""]
        return self.cases.open_counts_of_clients((case.client for case in found if case.client), departments)

    def _detail_rows(self, member: StaffMember, case: Case) -> tuple[dict[str, str], list, Any, dict[str, int]]:
        """What the detail shows from the database, read in one go."""
        staff_names, events = self.staff_names(), self.cases.events(case.id)
        followup = self.cases.followup(case.id) if case.reason == FOLLOWUP_REASON else None
        return staff_names, events, followup, self.same_client_open(member, [case])

    async def detail(self, member: StaffMember, case: Case) -> dict[str, Any]:
        staff_names, events, followup, same_client = await off_loop(self._detail_rows, member, case)
        conversation: dict[str, Any] = {"available": True, "error": None, "messages": []}
        last_user_at = None
        try:
            tracker = await self.rasa.tracker(case.conversation_id)
            conversation["messages"] = transcript.messages(tracker)
            last_user_at = transcript.last_user_message_at(tracker)
        except (RasaUnavailable, DeliveryRefused) as problem:
            logger.warning("tracker of case %s unavailable: %s", case.id, problem)
            conversation.update(available=False, error="暂时读取不到对话记录（智能助手服务无响应），案件信息不受影响。")
        return {"case": views.summary(case, staff_names, same_client_open=same_client),
                "notes": [{"at": e.at, "actor": e.actor, "actor_name": staff_names.get(e.actor, e.actor),
                           "text": e.detail} for e in events if e.action == "note"],
                "events": [views.event(e, staff_names) for e in events],
                "conversation": conversation,
                "reach": views.reach(case, last_user_at),
                "followup": views.followup(followup, staff_names) if followup is not None else None,
                "permissions": views.permissions(member, case)}

    # acting ------------------------------------------------------------------------------
    def _staff(self, member: StaffMember) -> dict[str, str]:
        department = names.departments().get(member.department or "", "助企帮帮团")
        return {"username": member.username, "name": member.name, "department": department}

    async def claim(self, member: StaffMember, case: Case) -> Case:
        case = await off_loop(self.cases.claim, case.id, member.username)
        staff = self._staff(member)
        greeting = f"您好，我是{staff['department']}的{member.name}，已接手您的问题（案件 #{case.id}），请问还有什么需要补充的吗？"
        await self._tell(case, member, greeting, pause=True)
        return case

    async def reply(self, member: StaffMember, case: Case, text: str) -> dict[str, Any]:
        return await self._tell(case, member, text)

    async def follow_up(self, member: StaffMember, case: Case, step: str, note: str,
                        by_phone: bool = False) -> dict[str, Any]:
        """Record a step of a 差评's follow-up. The 反馈 is first sent to the business as one reply,
        by the reply's own path (audit trail, unreachable users), and recorded only once delivered;
        a case that changed hands meanwhile keeps the delivered reply in its trail (409). A 反馈
        the specialist gave by telephone (a REST user, a WeChat window closed after a long 整改)
        is recorded as such, marked 【电话答复】, with nothing sent."""
        if step not in FOLLOWUP_STEPS:
            raise ValueError("未知的跟进步骤")
        sent: dict[str, Any] = {}
        if step == "feedback" and by_phone:
            note = PHONE_FEEDBACK + note
            sent = {"delivered": False, "message": "已记录电话答复。"}
        elif step == "feedback":
            sent = await self._tell(case, member, note)
            if not sent["delivered"]:
                return {"recorded": False, **sent, "followup": await off_loop(self._followup, case)}
        followup = await off_loop(self._record_followup, case, member, step, note)
        return {"recorded": True, **sent, "followup": followup}

    def _record_followup(self, case: Case, member: StaffMember, step: str, note: str) -> list[dict[str, Any]]:
        self.cases.record_followup(case.id, member.username, step, note)
        return self._followup(case)

    def _followup(self, case: Case) -> list[dict[str, Any]]:
        return views.followup(self.cases.followup(case.id), self.staff_names())

    async def _tell(self, case: Case, member: StaffMember, text: str, pause: bool = False) -> dict[str, Any]:
        """Send text to the user as this member; record what happened in the audit trail."""
        if case.channel not in views.PUSH_CHANNELS:
            await self.rasa.say(case.conversation_id, text, self._staff(member), pause=pause, deliver=False)
            await off_loop(self.cases.record, case.id, member.username, "reply_recorded", text)
            return {"delivered": False, "message": views.reach(case, None)["message"]}
        try:
            await self.rasa.say(case.conversation_id, text, self._staff(member), pause=pause)
        except DeliveryRefused as refused:
            await off_loop(self.cases.record, case.id, member.username, "reply_failed", f"{refused.code}: {text}",
                           unreachable=refused.out_of_window)
            why = ("微信客服消息窗口已关闭（用户超过 48 小时未发消息，或本窗口的消息条数已用完）"
                   if refused.out_of_window else f"渠道拒收（错误码 {refused.code}）")
            return {"delivered": False, "message": f"未送达：{why}。请改用用户留下的联系方式：{case.contact or '未提供'}。"}
        await off_loop(self.cases.record, case.id, member.username, "replied", text, unreachable=False)
        return {"delivered": True, "message": "已送达用户。"}

    async def finish(self, member: StaffMember, case: Case, outcome: str) -> Case:
        """Resolve (the bot resumes and asks for a rating) or hand back to the bot.

        The bot is resumed first, on its own: if Rasa cannot be reached nothing has changed
        and the specialist can simply try again; a refused notice cannot undo the resume. A 差评
        without its 反馈 is refused before the bot is touched (the repository checks it again)."""
        if outcome == "solved" and case.reason == FOLLOWUP_REASON:
            if not (await off_loop(self.cases.followup, case.id))["feedback"]:
                raise FollowupIncomplete(f"case {case.id} has no feedback step")
        await self.rasa.resume(case.conversation_id)
        try:
            case = await off_loop(self.cases.resolve, case.id, member.username, outcome, assignee=case.assignee or "")
        except CaseConflict:  # someone else moved it meanwhile: the user stays with a person
            await self._pause_quietly(case)
            raise
        try:
            if outcome == "solved":
                await self.rasa.trigger(case.conversation_id, RESOLVED_INTENT, {"case_id": str(case.id)})
            else:
                await self.rasa.say(case.conversation_id, HANDED_BACK, custom=self.payload(case))
        except (RasaUnavailable, DeliveryRefused) as problem:
            await off_loop(self.cases.record, case.id, member.username, "notice_failed", str(problem)[:300])
        return case

    async def close_same_client(self, member: StaffMember, case: Case) -> dict[str, Any]:
        """Hand back every open case of this case's client (a flood), as `finish` hands one back:
        each conversation is resumed on Rasa first; one Rasa cannot reach keeps its case open
        (the user is never left paused without a case) with `notice_failed` in its trail, and
        the others go on. The resumed ones are closed in one transaction (repository: a case
        resolved meanwhile is skipped), each with a `bulk_closed` row; then each user is told the
        assistant continues (a refused notice: `notice_failed`, as in `finish`)."""
        if not member.is_supervisor:
            raise PermissionError("只有主管可以批量关闭案件")
        if not case.client:
            raise ValueError(NO_CLIENT)
        found = await off_loop(self.cases.open_of_client, case.client)
        limit = asyncio.Semaphore(BULK_RASA_CALLS)

        async def resume(one: Case) -> bool:
            async with limit:
                try:
                    await self.rasa.resume(one.conversation_id)
                    return True
                except (RasaUnavailable, DeliveryRefused) as problem:
                    await off_loop(self.cases.record, one.id, member.username, "notice_failed",
                                   f"批量关闭未执行：智能助手无法恢复对话（{str(problem)[:200]}）")
                    return False

        resumed = [one for one, ok in zip(found, await asyncio.gather(*(resume(one) for one in found))) if ok]
        closed = await off_loop(self.cases.close_client_cases, case.client, member.username,
                                [one.id for one in resumed])
        closed_ids = {one.id for one in closed}  # a resumed one not closed was resolved meanwhile

        async def tell(one: Case) -> None:
            async with limit:
                try:
                    await self.rasa.say(one.conversation_id, HANDED_BACK, custom=self.payload(one))
                except (RasaUnavailable, DeliveryRefused) as problem:
                    await off_loop(self.cases.record, one.id, member.username, "notice_failed", str(problem)[:300])

        await asyncio.gather(*(tell(one) for one in closed))
        failed = sorted({one.id for one in found} - {one.id for one in resumed})
        return {"closed": len(closed), "closed_ids": sorted(closed_ids), "not_closed": failed,
                "message": f"已关闭同一来源的 {len(closed)} 件案件。" + (
                    f"另有 {len(failed)} 件因智能助手无法连接未关闭，请稍后重试。" if failed else "")}

    async def _pause_quietly(self, case: Case) -> None:
        try:
            await self.rasa.pause(case.conversation_id)
        except (RasaUnavailable, DeliveryRefused):
            logger.warning("could not pause %s again after a conflict on case %s", case.conversation_id, case.id)

    @staticmethod
    def payload(case: Case) -> dict[str, Any]:
        """The handoff payload the assistant sends when it opens a case, now with its new status."""
        return {"type": "handoff", "case_id": case.id, "department": case.department,
                "department_name": names.departments().get(case.department, case.department), "status": case.status}


def create_app(console: Console, name: str = "zhuqi_console",
               insight: insight_views.Insight | None = None) -> Sanic:
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = 64 * 1024
    app.ctx.console = console

    @app.middleware("request")
    async def authenticate(request: Request) -> HTTPResponse | None:
        request.ctx.member = None
        request.ctx.token = request.cookies.get(COOKIE)
        if request.path in PUBLIC:
            return None
        member = await off_loop(console.accounts.session, request.ctx.token)
        if member is None:
            return error(401, "请先登录") if request.path.startswith("/api/") else response.redirect("/login")
        if request.method not in ("GET", "HEAD") and not _same_origin_json(request):
            return error(403, "请求来源或格式不被接受")
        request.ctx.member = member
        return None

    @app.middleware("response")
    async def headers(request: Request, answer: HTTPResponse) -> None:
        # the app loads only its own files; the login page is self-contained (inline code)
        inline = " 'unsafe-inline'" if request.path == "/login" else ""
        answer.headers.update({
            "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
            "Content-Security-Policy": f"default-src 'self'; script-src 'self'{inline}; style-src 'self'{inline}; "
                                       "frame-ancestors 'none'; form-action 'self'"})

    @app.exception(SQLAlchemyError)
    async def database_down(request: Request, problem: Exception) -> HTTPResponse:
        logger.error("database error on %s: %s", request.path, problem)
        return error(503, "案件数据库暂时不可用，请稍后再试")

    def acting(handler: Handler) -> Handler:
        """Look the case up for the member and map the repository's errors to HTTP."""
        async def wrapped(request: Request, case_id: int) -> HTTPResponse:
            try:
                case = await console.case_for(request.ctx.member, case_id)
                return await handler(request, case)
            except CaseNotFound:
                return error(404, "没有这个案件")
            except PermissionError as refused:
                return error(403, str(refused) or "无权操作")
            except FollowupIncomplete:
                return error(409, NO_FEEDBACK)
            except CaseConflict:
                return error(409, "案件状态已变化（可能已被他人处理），请刷新后再试")
            except ValueError as bad:
                return error(400, str(bad))
            except RasaUnavailable:
                return error(502, "智能助手服务暂时无法连接，用户未收到通知；请稍后重试，或改用用户留下的联系方式")
            except DeliveryRefused as refused:
                return error(502, f"用户渠道拒收（错误码 {refused.code}）")
        wrapped.__name__ = handler.__name__
        return wrapped

    def allowed(request: Request, case: Case, what: str) -> None:
        if not views.permissions(request.ctx.member, case)[what]:
            raise PermissionError("您无权对该案件执行此操作")

    def text_of(request: Request, field: str = "text") -> str:
        body = request.json if isinstance(request.json, dict) else {}
        text = str(body.get(field) or "").strip()
        if not text:
            raise ValueError("内容不能为空")
        if len(text) > MAX_TEXT:
            raise ValueError(f"内容过长（最多 {MAX_TEXT} 字）")
        return text

    # pages --------------------------------------------------------------------------------
    @app.get("/healthz")
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    @app.get("/login")
    async def login_page(_: Request) -> HTTPResponse:
        return await response.file(STATIC / "login.html", mime_type=STATIC_TYPES[".html"])

    @app.get("/")
    async def index(_: Request) -> HTTPResponse:
        return await response.file(STATIC / "index.html", mime_type=STATIC_TYPES[".html"])

    @app.get("/static/<name:[A-Za-z0-9_.-]+>")
    async def static(_: Request, name: str) -> HTTPResponse:
        path = STATIC / name
        if path.suffix not in STATIC_TYPES or not path.is_file() or name == "login.html":
            return error(404, "not found")
        return await response.file(path, mime_type=STATIC_TYPES[path.suffix])

    @app.get("/static/vendor/echarts.min.js")
    async def echarts(_: Request) -> HTTPResponse:
        if not ECHARTS.is_file():
            return error(404, "ECharts is not installed: run `npm ci` in console/")
        return await response.file(ECHARTS, mime_type=STATIC_TYPES[".js"])

    # the dashboard and the review inbox (console/insight_views.py)
    insight_views.register(app, insight or insight_views.Insight.from_environ())

    # session -------------------------------------------------------------------------------
    @app.post("/api/login")
    async def login(request: Request) -> HTTPResponse:
        if not _same_origin_json(request):
            return error(403, "请求来源或格式不被接受")
        body = request.json if isinstance(request.json, dict) else {}
        try:  # scrypt takes ~40 ms of CPU: off the event loop, so polling consoles are not held up
            done = await off_loop(console.accounts.login, str(body.get("username") or "")[:64],
                                  str(body.get("password") or "")[:256], client_address(request))
        except Throttled as throttled:  # this address only: the colleague at her own desk is not held up
            wait = math.ceil(throttled.retry_after)
            answer = error(429, f"尝试次数过多，请 {wait} 秒后再试")
            answer.headers["Retry-After"] = str(wait)
            return answer
        if done is None:
            return error(401, "用户名或密码不正确")
        member, token = done
        answer = response.json({"user": _user(member)})
        answer.cookies[COOKIE] = token
        for key, value in {"httponly": True, "samesite": "Strict", "path": "/", "max-age": SESSION_SECONDS}.items():
            answer.cookies[COOKIE][key] = value
        if console.secure_cookie:
            answer.cookies[COOKIE]["secure"] = True
        return answer

    @app.post("/api/logout")
    async def logout(request: Request) -> HTTPResponse:
        await off_loop(console.accounts.logout, request.ctx.token)
        answer = response.json({"ok": True})
        del answer.cookies[COOKIE]
        return answer

    @app.get("/api/me")
    async def me(request: Request) -> HTTPResponse:
        return response.json({"user": _user(request.ctx.member)})

    @app.get("/api/departments")
    async def departments(_: Request) -> HTTPResponse:
        return response.json({"departments": [{"id": k, "name": v} for k, v in names.departments().items()]})

    # cases ---------------------------------------------------------------------------------
    @app.get("/api/cases")
    async def queue(request: Request) -> HTTPResponse:
        status = request.args.get("status", "open")
        if status not in ("open", "all", *STATUSES):
            return error(400, "未知的状态")
        page = request.args.get("page", "1")
        if not page.isdigit() or len(page) > 6:
            return error(400, "页码不正确")
        return response.json(await console.queue(request.ctx.member, status, request.args.get("department") or None,
                                                 int(page)))

    @app.get("/api/cases/<case_id:int>")
    @acting
    async def detail(request: Request, case: Case) -> HTTPResponse:
        return response.json(await console.detail(request.ctx.member, case))

    @app.post("/api/cases/<case_id:int>/claim")
    @acting
    async def claim(request: Request, case: Case) -> HTTPResponse:
        allowed(request, case, "claim")
        return response.json(await off_loop(_case, await console.claim(request.ctx.member, case)))

    @app.post("/api/cases/<case_id:int>/release")
    @acting
    async def release(request: Request, case: Case) -> HTTPResponse:
        allowed(request, case, "release")
        username = request.ctx.member.username
        return response.json(await off_loop(
            lambda: _case(console.cases.release(case.id, username, assignee=case.assignee or ""))))

    @app.post("/api/cases/<case_id:int>/reply")
    @acting
    async def reply(request: Request, case: Case) -> HTTPResponse:
        allowed(request, case, "reply")
        return response.json(await console.reply(request.ctx.member, case, text_of(request)))

    @app.post("/api/cases/<case_id:int>/note")
    @acting
    async def note(request: Request, case: Case) -> HTTPResponse:
        allowed(request, case, "note")
        entry = await off_loop(console.cases.note, case.id, request.ctx.member.username, text_of(request))
        return response.json({"note": {"at": entry.at, "actor": entry.actor, "actor_name": request.ctx.member.name,
                                       "text": entry.detail}})

    @app.post("/api/cases/<case_id:int>/followup")
    @acting
    async def follow_up(request: Request, case: Case) -> HTTPResponse:
        allowed(request, case, "followup")
        body = request.json if isinstance(request.json, dict) else {}
        return response.json(await console.follow_up(request.ctx.member, case, str(body.get("step") or ""),
                                                     text_of(request), by_phone=body.get("via") == "phone"))

    @app.post("/api/cases/<case_id:int>/resolve")
    @acting
    async def resolve(request: Request, case: Case) -> HTTPResponse:
        allowed(request, case, "resolve")
        return response.json(await off_loop(_case, await console.finish(request.ctx.member, case, "solved")))

    @app.post("/api/cases/<case_id:int>/handback")
    @acting
    async def handback(request: Request, case: Case) -> HTTPResponse:
        allowed(request, case, "handback")
        return response.json(await off_loop(_case, await console.finish(request.ctx.member, case, "handed_back")))

    @app.post("/api/cases/<case_id:int>/reassign")
    @acting
    async def reassign(request: Request, case: Case) -> HTTPResponse:
        allowed(request, case, "reassign")
        department = text_of(request, "department")
        if department not in names.departments():
            raise ValueError("未知的部门")
        username = request.ctx.member.username
        return response.json(await off_loop(lambda: _case(console.cases.reassign(case.id, username, department))))

    @app.post("/api/cases/<case_id:int>/close-same-client")
    @acting
    async def close_same_client(request: Request, case: Case) -> HTTPResponse:
        return response.json(await console.close_same_client(request.ctx.member, case))

    def _case(case: Case) -> dict[str, Any]:
        """The answer of an action on a case; it reads the staff names, so it runs in a worker thread."""
        return {"case": views.summary(case, console.staff_names())}

    return app


def _user(member: StaffMember) -> dict[str, Any]:
    return {"username": member.username, "name": member.name, "role": member.role, "department": member.department,
            "department_name": names.departments().get(member.department or "", "全部部门")}


def _same_origin_json(request: Request) -> bool:
    """A JSON body, and (when the browser says where it comes from) from this very host."""
    if not (request.content_type or "").startswith("application/json"):
        return False
    origin = request.headers.get("origin")
    return not origin or urlsplit(origin).netloc == request.host
