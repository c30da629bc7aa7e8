"""The console's house: its blueprint, the one accessor for the request's Services and database
sessions, signing-in checks, error pages and the helpers every area's pages share."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_wtf.csrf import generate_csrf, validate_csrf
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from wtforms.validators import ValidationError

from bot.engine import Context, Incoming, Sender
from bot.school import get_setting
from bot.services import Services
from bot.text import local_naive, month_span, normalize, tidy
from bot.wechat.gateway import sniff_image
from models import DownloadedPhoto, Person, PersonRole
from models.console import ConsoleAccount
from models.identity import ROLE_NAMES
from models.repair import STATUS_NAMES

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates")

SEEN_EVERY = 60  # seconds: how stale the cookie's "last used" may get before it is written again
MAX_ID = 2**31 - 1  # the largest id or number a column holds on every backend
LOCKED = "登录失败次数过多，请 15 分钟后再试。"
ERRORS = {
    400: ("请求有误", "请求的参数不对（或页面已过期）。请回到控制台，从页面上的链接重新进入。"),
    403: ("不能访问", "没有权限访问这个页面。"),
    404: ("没有找到", "没有找到这个页面或记录，请核对链接。"),
    405: ("请求有误", "这个页面不接受这种请求。"),
    410: ("已失效", "这个链接或页面已失效，请回到控制台重新操作。"),
    413: ("内容太大", "提交的内容太大。"),
    429: ("请稍后再试", LOCKED),
    500: ("出错了", "控制台出错了，请稍后再试；问题已记入日志。"),
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # in no name or code (PostgreSQL refuses NUL in text)


def services() -> Services:
    """The Services of the request being answered: the one place a console page gets them from — the
    signed-in person's school (chosen at sign-in when there are several): bot.county."""
    from bot.county import console_services

    return console_services()


def db() -> Session:
    """A session for a page that changes something (the caller opens its transaction)."""
    return services().factory()


def read_db() -> Session:
    """For the pages: reads that never wait for, or hold up, the webhook's writes."""
    return services().read_factory()


# who may sign in, and which areas each role sees (bureau: read-only, every page an admin reads)
CONSOLE_ROLES = ("admin", "canteen", "staff", "bureau")
READ_ONLY = "bureau"


class NavItem(NamedTuple):
    label: str
    endpoint: str
    roles: tuple[str, ...]


# the navigation, in this order; an area shows once its pages exist (its endpoint is registered)
NAV = (
    NavItem("今日", "console.overview", ("admin", "bureau")),
    NavItem("报修", "console.repairs", ("admin", "staff", "bureau")),
    NavItem("资产", "console.assets", ("admin", "staff", "bureau")),
    NavItem("人员", "console.people", ("admin", "bureau")),
    NavItem("食堂", "console.canteen", ("admin", "canteen", "bureau")),
    NavItem("校车", "console.bus", ("admin", "bureau")),
    NavItem("值日", "console.duty", ("admin", "bureau")),
    NavItem("日程", "console.calendar", ("admin", "bureau")),
    NavItem("行事历", "console.tasks", ("admin", "bureau")),
    NavItem("推送", "console.outbox", ("admin", "bureau")),
    NavItem("通知回执", "console.notices", ("admin", "bureau")),
    NavItem("意见箱", "console.suggestions", ("admin", "bureau")),
    NavItem("满意度测评", "console.survey", ("admin", "bureau")),
    NavItem("台账", "console.ledgers", ("admin", "bureau")),
    NavItem("设置", "console.settings", ("admin", "bureau")),
    NavItem("操作记录", "console.audit", ("admin", "bureau")),
    NavItem("区县概览", "console.county", ("bureau",)),
)


@bp.record_once
def _csrf_settings(state: Any) -> None:
    """Flask-WTF's CSRF tokens under the field name the console's forms use; valid as long as the
    session (which ends on its own: console_idle_hours)."""
    state.app.config.setdefault("WTF_CSRF_FIELD_NAME", "csrf")
    state.app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    state.app.config.setdefault("WTF_CSRF_SSL_STRICT", False)


def csrf_token() -> str:
    return generate_csrf()  # type: ignore[no-any-return]


@bp.before_request
def _check_csrf_on_every_post() -> None:
    """Every POST to the console carries the session's CSRF token (Flask-WTF), or is refused with 400."""
    if request.method == "POST":
        check_csrf()


def check_csrf() -> None:
    try:
        validate_csrf(request.form.get("csrf", ""))
    except ValidationError:
        abort(400)


def _signed_in() -> tuple[int, set[str]] | None:
    """The cookie's session is still good (same session version, the person still has a console role,
    used recently): the person's id and roles; None otherwise."""
    person_id, version, seen = session.get("person_id"), session.get("version"), session.get("seen")
    if not (isinstance(person_id, int) and isinstance(version, int) and isinstance(seen, int | float)):
        return None
    with read_db() as s:  # every page asks: never queue behind the webhook's writes
        rows = s.execute(select(ConsoleAccount.session_version, PersonRole.role)
                         .outerjoin(PersonRole, (PersonRole.person_id == ConsoleAccount.person_id)
                                    & PersonRole.role.in_(CONSOLE_ROLES))
                         .where(ConsoleAccount.person_id == person_id)).all()
        idle_hours = int(get_setting(s, "console_idle_hours"))
    now = services().now().timestamp()
    roles = {role for _, role in rows if role}
    if not rows or rows[0][0] != version or not roles or not 0 <= now - seen <= idle_hours * 3600:
        return None
    if now - seen > SEEN_EVERY:
        session["seen"] = now
    return person_id, roles


def requires(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A console page for these roles, checked on every request: signed out → the sign-in page;
    signed in without one of the roles → 403. The signed-in person is in g.person_id, g.roles."""
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            signed_in = _signed_in()
            if signed_in is None:
                session.clear()
                return redirect(url_for("console.login", next=quote(request.path)))
            g.person_id, g.roles = signed_in
            if roles and not g.roles & set(roles):
                abort(403)
            return view(*args, **kwargs)

        wrapper.console_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate


def actor() -> str:
    """Who is acting, as the audit log writes it: the signed-in person's name."""
    return str(session.get("name", ""))


def nav_for(roles: set[str]) -> list[NavItem]:
    """The areas these roles see, in the navigation's order, among those whose pages exist."""
    return [item for item in NAV if item.endpoint in current_app.view_functions and roles & set(item.roles)]


def home_for(roles: set[str]) -> str:
    """Where a person lands after signing in: their first area."""
    items = nav_for(roles)
    return url_for(items[0].endpoint) if items else url_for("console.account")


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    roles: set[str] = g.get("roles", set())
    return {"csrf_token": csrf_token, "status_names": STATUS_NAMES, "role_names": ROLE_NAMES,
            "nav": nav_for(roles) if roles else [], "may_change": bool(roles - {READ_ONLY})}


@bp.app_template_filter("local")
def _local_time(moment: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    """A stored UTC moment as the school's wall-clock time; nothing for None."""
    local = local_naive(moment, services().settings.tz)
    return local.strftime(fmt) if local else ""


def _in_console() -> bool:
    return request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/")


@bp.after_app_request
def _no_store(response: Response) -> Response:
    """Console pages (and their errors and photos) are kept by no cache, the browser's included."""
    if _in_console():
        response.headers["Cache-Control"] = "no-store"
    return response


def _error_page(error: HTTPException) -> Any:
    """A console error as a Chinese page; elsewhere (the webhook, the public pages) as it was."""
    if not _in_console() or error.code not in ERRORS:
        return error
    title, text = ERRORS[error.code]
    return render_template("admin/error.html", title=title, text=text), error.code


for _code in ERRORS:
    bp.app_errorhandler(_code)(_error_page)


def number(text: str) -> int | None:
    """A number a parameter gives (an id, a ticket number), if it is one a column can hold."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_ID else None


def month_asked(text: str, today: date) -> date:
    """?month=YYYY-MM as its first day; this month without one; 400 for anything else, and for a month
    without neighbours to link to (years 1 and 9999)."""
    if not text:
        return month_span(today)[0]
    try:
        month = datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        abort(400)
    if not date.min.year < month.year < date.max.year:
        abort(400)
    return month


def send_photo(model: type[DownloadedPhoto], photo_id: int) -> Response:
    """A downloaded photo's file, if it is saved, inside the storage folder and an image by its first
    bytes; served as that image type (never the type it was stored with) and not to be sniffed."""
    with read_db() as s:
        row = s.get(model, photo_id)
        if row is None or not row.path:
            abort(404)
        root = services().settings.storage_dir.resolve()
        path = (root / row.path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            abort(404)
        with path.open("rb") as f:
            image_type = sniff_image(f.read(16))
        if image_type is None:  # e.g. an HTML page kept before photos were checked
            abort(404)
        res = send_file(Path(path), mimetype=image_type)
        res.headers["X-Content-Type-Options"] = "nosniff"
        return res


# -- acting as the signed-in person through the chat's own functions -------------------------------------
@dataclass
class ConsoleContext(Context):
    """A handler's Context for a change made from the console: the signed-in person acts, in the
    page's transaction, and the handler queues the same pushes as when they send the command."""

    acting: Person | None = None

    @property
    def person(self) -> Person | None:
        return self.acting

    @property
    def person_id(self) -> int | None:
        return self.acting.id if self.acting else None

    @property
    def roles(self) -> set[str]:
        return self.acting.role_set if self.acting else set()


def acting_person(s: Session) -> Person:
    person = s.get(Person, g.person_id)
    if person is None:
        abort(403)
    return person


def chat_context(s: Session, person: Person) -> ConsoleContext:
    svc = services()
    return ConsoleContext(conn=s.connection(), sender=Sender(f"console:{person.id}", known=True, person_id=person.id,
                                                             roles=frozenset(person.role_set)),
                          now=svc.now(), settings=svc.settings, open_session=lambda: s, acting=person)


def as_command(text: str) -> Incoming:
    """`text` as if the person had sent it in the chat (for the handler that answers that command)."""
    return Incoming(openid="console", account="", msg_type="text", create_time=0, text=normalize(text),
                    original=tidy(text))
