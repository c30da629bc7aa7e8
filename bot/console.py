"""The admin console under /admin: sign-in, today's overview, repairs with their photos, the assets'
repair history, a month's canteen feedback with its photos, the bus, duty, the outbox and people.
Read-only views over what the bot records; changes go through the bot and the CLI. Only admins with a
console password (`houqin console-password NAME`) may sign in.

Sessions. A signed-in browser's cookie (signed, HttpOnly, SameSite=Lax, Secure when HOUQIN_PUBLIC_URL
is https) holds the person, the account's `session_version` when it signed in, and when it was last
used. Every console request checks, in one query, that the account still has that version and the
person is still an admin, and that the session was used within `console_idle_hours` (a school
setting, 8 by default); otherwise the browser signs in again. Logout, a new password and giving or
taking the admin role (models.console) bump the version: every browser of that account is signed out.

Sign-in attempts. Failures are counted under three keys (`console_login_throttles`), each in a
15-minute window:
- a name from one address, 5: the lock per account. Whoever guesses from their address is shut
  out of that name after 5 wrong passwords; the real admin, from the office's address, is another
  key and still signs in with the right password. (Someone behind the office's own address can
  shut it out for 15 minutes, as with any lock.)
- an address, 20 whatever the names: slows one machine trying many names (or many spellings).
- a name, 50 from every address together: the ceiling for guesses from many addresses. The
  addresses the account last signed in from (`known_addresses`, the last 5) are spared it, so an
  attacker with many machines still cannot shut the office out.
An attempt is counted before its password is checked: one conditional UPDATE a key
(`failures + 1 … WHERE failures < limit`, or a new window) in a transaction committed before the
slow hash. A key at its limit updates nothing and no password is checked, so parallel attempts
cannot check more than the limit. A right password gives its counts back (the name-and-address
count is cleared).

Names without an account (or without a console password) go through the same keys, and their
password is checked against a dummy hash: the message, the lock and the time taken are the same as
for a real name with a wrong password. Only the right password of an account tells more (that
its person is no longer an admin).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from sqlalchemy import case, delete, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash

from bot.county import choose_login_school, console_services, login_schools
from bot.outbox import kind_name, short_reason, template_warning
from bot.places import find_asset
from bot.school import get_setting
from bot.services import Services
from bot.text import day_bounds, day_label, local_naive, month_key, month_span
from bot.wechat.gateway import sniff_image
from handlers.canteen import (
    KIND_NAMES,
    SCORE_NAMES,
    average,
    counted_ratings,
    month_feedback,
    month_meals,
    month_surveys,
    photo_state,
    superseded_code,
    survey_averages,
    survey_counted,
)
from handlers.identity import outstanding_codes
from handlers.repair import describe
from models import (
    Asset,
    BusTrip,
    Delivery,
    DownloadedPhoto,
    DutyShift,
    FeedbackPhoto,
    InboundMessage,
    Person,
    PersonRole,
    RepairTicket,
    TicketPhoto,
)
from models.console import ConsoleAccount, ConsoleLoginThrottle, revoke_sessions
from models.identity import ROLE_NAMES
from models.outbox import FAILED, PENDING, SENDING, SENT, UNDELIVERABLE, DeliveryAlert
from models.repair import ACTIVE, STATUS_NAMES

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates")

WINDOW = timedelta(minutes=15)
MAX_FAILED = 5  # a name from one address
MAX_FAILED_ADDRESS = 20  # one address, whatever the names
MAX_FAILED_NAME = 50  # one name, from every address but those it signed in from
KNOWN_ADDRESSES = 5
SEEN_EVERY = 60  # seconds: how stale the cookie's "last used" may get before it is written again
MAX_ID = 2**31 - 1  # the largest id or number a column holds on every backend
BAD_LOGIN = "姓名或密码不对。"
LOCKED = "登录失败次数过多，请 15 分钟后再试。"
NOT_ADMIN = "只有管理员可以登录控制台。"
ERRORS = {
    400: ("请求有误", "请求的参数不对（或页面已过期）。请回到控制台，从页面上的链接重新进入。"),
    403: ("不能访问", "没有权限访问这个页面。"),
    404: ("没有找到", "没有找到这个页面或记录，请核对链接。"),
    405: ("请求有误", "这个页面不接受这种请求。"),
    413: ("内容太大", "提交的内容太大。"),
    429: ("请稍后再试", LOCKED),
    500: ("出错了", "控制台出错了，请稍后再试；问题已记入日志。"),
}
ALERTS_SHOWN = 50
DELIVERY_STATUSES = (PENDING, SENDING, SENT, FAILED, UNDELIVERABLE)
# the outbox page's words for a delivery's status (as its filter links) and channel
DELIVERY_STATUS_NAMES = {PENDING: "待发送", SENDING: "发送中", SENT: "已送达", FAILED: "失败", UNDELIVERABLE: "无法送达"}
CHANNEL_NAMES = {"template": "模板消息", "custom": "客服消息"}
_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
# where a sign-in may send the browser back to: a console path, nothing that leaves it or breaks a header
_NEXT = re.compile(r"/admin(?:/[^\x00-\x20\x7f\\]*)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # in no name or code (PostgreSQL refuses NUL in text)


def _services() -> Services:
    """The signed-in person's school (chosen at sign-in when there are several): bot.county."""
    return console_services()


def _db() -> Session:
    return _services().factory()


def _read_db() -> Session:
    """For the pages: reads that never wait for, or hold up, the webhook's writes."""
    return _services().read_factory()


def set_password(db: Session, person: Person, password: str) -> None:
    """Set (or change) an admin's console password; a change signs out every browser of the account."""
    if "admin" not in person.role_set:
        raise ValueError(NOT_ADMIN)
    if len(password) < 8:
        raise ValueError("密码至少 8 位。")
    account = db.get(ConsoleAccount, person.id)
    if account is None:
        db.add(ConsoleAccount(person_id=person.id, password_hash=generate_password_hash(password)))
    else:
        account.password_hash = generate_password_hash(password)
        db.flush()
        db.execute(revoke_sessions(person.id))


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return str(session["csrf"])


def _check_csrf() -> None:
    token = request.form.get("csrf", "")
    if not token or not hmac.compare_digest(token, str(session.get("csrf", ""))):
        abort(400)


def _signed_in() -> bool:
    """The cookie's session is still good: same session version, still an admin, used recently."""
    person_id, version, seen = session.get("person_id"), session.get("version"), session.get("seen")
    if not (isinstance(person_id, int) and isinstance(version, int) and isinstance(seen, int | float)):
        return False
    services = _services()
    with _read_db() as db:  # every page asks: never queue behind the webhook's writes
        admin = (select(PersonRole.id).where(PersonRole.person_id == ConsoleAccount.person_id,
                                             PersonRole.role == "admin").exists())
        row = db.execute(select(ConsoleAccount.session_version, admin)
                         .where(ConsoleAccount.person_id == person_id)).first()
        idle_hours = int(get_setting(db, "console_idle_hours"))
    now = services.now().timestamp()
    if row is None or row[0] != version or not row[1] or not 0 <= now - seen <= idle_hours * 3600:
        return False
    if now - seen > SEEN_EVERY:
        session["seen"] = now
    return True


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _signed_in():
            session.clear()
            return redirect(url_for("console.login", next=quote(request.path)))
        return view(*args, **kwargs)

    return wrapper


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"csrf_token": _csrf_token, "status_names": STATUS_NAMES, "role_names": ROLE_NAMES}


@bp.app_template_filter("local")
def _local_time(moment: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    """A stored UTC moment as the school's wall-clock time; nothing for None."""
    local = local_naive(moment, _services().settings.tz)
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


# -- signing in -----------------------------------------------------------------------------------
class _Key(NamedTuple):
    key: str
    limit: int


def _keys(name: str, address: str, known: bool) -> list[_Key]:
    """The counters an attempt at `name` from `address` is taken from (the module's docstring)."""
    def digest(*parts: str) -> str:
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]

    keys = [_Key(f"pair:{digest(name, address)}", MAX_FAILED), _Key(f"addr:{digest(address)}", MAX_FAILED_ADDRESS)]
    return keys if known else [*keys, _Key(f"name:{digest(name)}", MAX_FAILED_NAME)]


def _take(db: Session, key: _Key, now: datetime) -> bool:
    """Count one attempt under `key` unless it is at its limit in its window: one conditional UPDATE
    (or the INSERT of a new key), so two parallel attempts cannot both slip under the limit."""
    throttle = ConsoleLoginThrottle
    over = throttle.window_start <= now - WINDOW
    started = literal(now, throttle.window_start.type)
    bump = (update(throttle).where(throttle.key == key.key, or_(throttle.failures < key.limit, over))
            .values(failures=case((over, 1), else_=throttle.failures + 1),
                    window_start=case((over, started), else_=throttle.window_start))
            .returning(throttle.key).execution_options(synchronize_session=False))
    if db.execute(bump).first() is not None:
        return True
    insert = (_INSERTS[db.get_bind().dialect.name](throttle).values(key=key.key, failures=1, window_start=now)
              .on_conflict_do_nothing().returning(throttle.key))
    return db.execute(insert).first() is not None or db.execute(bump).first() is not None


def _give_back(db: Session, keys: list[_Key]) -> None:
    """A right password: its attempt does not count; the name-and-address count starts again."""
    throttle = ConsoleLoginThrottle
    pair, *others = (k.key for k in keys)
    db.execute(update(throttle).where(throttle.key == pair).values(failures=0))
    db.execute(update(throttle).where(throttle.key.in_(others), throttle.failures > 0)
               .values(failures=throttle.failures - 1))


# what an unknown name's password is checked against: werkzeug's default method with its default cost
# (the one `houqin console-password` uses), so the check takes as long as a real one; nothing matches it
DUMMY_HASH = f"scrypt:32768:8:1${'0' * 16}${'0' * 128}"


def _next_page() -> str:
    """?next= as a console path to go to after signing in; a 400 for anything else."""
    target = request.args.get("next", "")
    if target and not _NEXT.fullmatch(target):
        abort(400)
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = _next_page()
    schools = login_schools()
    if request.method == "GET":
        return render_template("admin/login.html", error="", schools=schools)
    _check_csrf()
    name = request.form.get("name", "").strip()
    if _CONTROL.search(name):
        abort(400)
    choose_login_school(request.form.get("school", ""), schools)
    error, status = _sign_in(name, request.form.get("password", ""), (request.remote_addr or "")[:64])
    if not error:
        return redirect(target or url_for("console.overview"))
    return render_template("admin/login.html", error=error, schools=schools), status


def _sign_in(name: str, password: str, address: str) -> tuple[str, int]:
    """Check a name and password (the module's docstring says how attempts are counted); on success
    the session is set up. Returns the error to show ("" for none) and the page's status."""
    now = _services().now()
    with _db() as db:
        db.begin()
        accounts = list(db.scalars(select(ConsoleAccount).join(Person).where(Person.name == name)
                                   .order_by(ConsoleAccount.person_id)))
        keys = _keys(name, address, known=any(address in a.known_addresses.split() for a in accounts))
        if not all(_take(db, key, now) for key in keys):
            db.rollback()  # nothing counted: this attempt checks no password
            return LOCKED, 429
        db.commit()  # counted before the password is checked (and whatever happens next)
        right = [a for a in accounts if check_password_hash(a.password_hash, password)]
        if not accounts:
            check_password_hash(DUMMY_HASH, password)
        if not right:
            with db.begin():  # counters whose window has passed count nothing: drop them
                db.execute(delete(ConsoleLoginThrottle).where(ConsoleLoginThrottle.window_start <= now - WINDOW))
            return BAD_LOGIN, 401
        with db.begin():
            _give_back(db, keys)
            account = db.get(ConsoleAccount, right[0].person_id, populate_existing=True)
            person = db.get(Person, right[0].person_id)
            if account is None or person is None or "admin" not in person.role_set:
                return NOT_ADMIN, 403
            addresses = [address, *(a for a in account.known_addresses.split() if a != address)]
            account.known_addresses = " ".join(addresses[:KNOWN_ADDRESSES])
            session.clear()
            session.update(person_id=person.id, name=person.name, version=account.session_version,
                           seen=now.timestamp(), school=g.get("console_school", ""))
    return "", 200


@bp.post("/logout")
def logout() -> Response:
    """Signs this account out of every browser (the session version moves on)."""
    _check_csrf()
    person_id = session.get("person_id")
    if isinstance(person_id, int):
        with _db() as db, db.begin():
            db.execute(revoke_sessions(person_id))
    session.clear()
    return redirect(url_for("console.login"))  # type: ignore[return-value]


def _number(text: str) -> int | None:
    """A number a parameter gives (an id, a ticket number), if it is one a column can hold."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_ID else None


@bp.get("/")
@login_required
def overview() -> str:
    services = _services()
    day = services.now().astimezone(services.settings.tz).date()
    start, end = day_bounds(day, services.settings.tz)
    with _read_db() as db:
        active = list(db.scalars(select(RepairTicket).where(RepairTicket.status.in_(ACTIVE))
                                 .order_by(RepairTicket.urgent.desc(), RepairTicket.filed_at)))
        trips = list(db.scalars(select(BusTrip).where(BusTrip.day == day).order_by(BusTrip.route_id, BusTrip.trip)))
        shifts = list(db.scalars(select(DutyShift).where(DutyShift.day == day).order_by(DutyShift.slot)))
        problems = db.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.status.in_((UNDELIVERABLE, FAILED)), Delivery.next_attempt_at >= start)) or 0
        received = db.scalar(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.received_at >= start, InboundMessage.received_at < end)) or 0
        failed = db.scalar(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.received_at >= start, InboundMessage.status == "failed")) or 0
        alerts = list(db.scalars(select(DeliveryAlert).where(DeliveryAlert.acknowledged_at.is_(None))
                                 .order_by(DeliveryAlert.safety.desc(), DeliveryAlert.raised_at.desc())
                                 .limit(ALERTS_SHOWN)))
        unacknowledged = db.scalar(select(func.count()).select_from(DeliveryAlert)
                                   .where(DeliveryAlert.acknowledged_at.is_(None))) or 0
        return render_template("admin/overview.html", day=day_label(day), active=active, trips=trips, shifts=shifts,
                               problems=problems, received=received, failed=failed, alerts=alerts,
                               unacknowledged=unacknowledged, kind_name=kind_name, short_reason=short_reason,
                               template_warning=template_warning(services.settings))


@bp.post("/alerts/acknowledge")
@login_required
def acknowledge_alerts() -> Response:
    """An admin has seen who could not be reached (one alert, or all of them): the banner drops them."""
    _check_csrf()
    wanted = request.form.get("alert", "")
    alert_id = _number(wanted)
    if wanted and alert_id is None:
        abort(400)
    with _db() as db, db.begin():
        query = select(DeliveryAlert).where(DeliveryAlert.acknowledged_at.is_(None))
        if alert_id is not None:
            query = query.where(DeliveryAlert.id == alert_id)
        for alert in db.scalars(query):
            alert.acknowledged_at, alert.acknowledged_by = _services().now(), str(session.get("name", ""))
    return redirect(url_for("console.overview"))  # type: ignore[return-value]


@bp.get("/repairs")
@login_required
def repairs() -> str:
    status = request.args.get("status", "active")
    if status not in ("active", "all", *STATUS_NAMES):
        abort(400)
    with _read_db() as db:
        query = select(RepairTicket).order_by(RepairTicket.number.desc()).limit(200)
        if status == "active":
            query = query.where(RepairTicket.status.in_(ACTIVE))
        elif status in STATUS_NAMES:
            query = query.where(RepairTicket.status == status)
        tickets = list(db.scalars(query))
        return render_template("admin/repairs.html", tickets=tickets, status=status)


@bp.get("/repairs/<code>")
@login_required
def ticket(code: str) -> str:
    number = _number(code.upper().removeprefix("R"))
    if number is None:
        abort(404)
    with _read_db() as db:
        found = db.scalar(select(RepairTicket).where(RepairTicket.number == number))
        if found is None:
            abort(404)
        return render_template("admin/ticket.html", ticket=found, text=describe(found, _services().settings.tz))


@bp.get("/assets")
@login_required
def assets() -> str:
    """Every registered asset with how often it was repaired and when last, most-repaired first."""
    repaired = (select(RepairTicket.asset_id, func.count().label("tickets"),
                       func.max(RepairTicket.filed_at).label("last_filed"))
                .group_by(RepairTicket.asset_id).subquery())
    tickets = func.coalesce(repaired.c.tickets, 0)
    with _read_db() as db:
        rows = db.execute(select(Asset, tickets, repaired.c.last_filed)
                          .outerjoin(repaired, repaired.c.asset_id == Asset.id).options(joinedload(Asset.room))
                          .order_by(tickets.desc(), repaired.c.last_filed.desc(), Asset.code)).all()
        return render_template("admin/assets.html", rows=rows)


@bp.get("/assets/<path:code>")
@login_required
def asset(code: str) -> str:
    if _CONTROL.search(code):
        abort(404)
    with _read_db() as db:
        found = find_asset(db, code)
        if found is None:
            abort(404)
        tickets = list(db.scalars(select(RepairTicket).where(RepairTicket.asset_id == found.id)
                                  .order_by(RepairTicket.number.desc())))
        return render_template("admin/asset.html", asset=found, tickets=tickets)


@bp.get("/canteen")
@login_required
def canteen() -> str:
    """A month's canteen feedback, newest first, with its photos, food-safety words and replies; the
    month's survey answers (every one, with the averages of those that count) and 陪餐 records."""
    services = _services()
    month = _month_asked(request.args.get("month", ""), services.now().astimezone(services.settings.tz).date())
    first, after = month_span(month)
    tz = services.settings.tz
    with _read_db() as db:
        rows = month_feedback(db, month)[::-1]
        codes = {r.id: r.code for r in rows}
        surveys = month_surveys(db, month, tz)
        return render_template("admin/canteen.html", month=month, rows=rows, photo_state=photo_state,
                               surveys=surveys, survey_averages=survey_averages(surveys), score_names=SCORE_NAMES,
                               kind_names=KIND_NAMES, survey_counted=lambda a: survey_counted(a, tz),
                               meals=month_meals(db, month),
                               average=average(counted_ratings(rows)),
                               superseded={r.id: superseded_code(r, codes) for r in rows if not r.counted},
                               alerts=sum(1 for r in rows if r.alert_words),
                               earlier=month_key(first - timedelta(days=1)), later=month_key(after))


def _month_asked(text: str, today: date) -> date:
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


@bp.get(f"/photos/<int(max={MAX_ID}):photo_id>")
@login_required
def photo(photo_id: int) -> Response:
    return _send_photo(TicketPhoto, photo_id)


@bp.get(f"/canteen-photos/<int(max={MAX_ID}):photo_id>")
@login_required
def canteen_photo(photo_id: int) -> Response:
    return _send_photo(FeedbackPhoto, photo_id)


def _send_photo(model: type[DownloadedPhoto], photo_id: int) -> Response:
    """A downloaded photo's file, if it is saved, inside the storage folder and an image by its first
    bytes; served as that image type (never the type it was stored with) and not to be sniffed."""
    with _read_db() as db:
        row = db.get(model, photo_id)
        if row is None or not row.path:
            abort(404)
        root = _services().settings.storage_dir.resolve()
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


@bp.get("/outbox")
@login_required
def outbox() -> str:
    status = request.args.get("status", "")
    if status and status not in DELIVERY_STATUSES:
        abort(400)
    with _read_db() as db:
        query = select(Delivery).order_by(Delivery.id.desc()).limit(200)
        if status:
            query = query.where(Delivery.status == status)
        deliveries = list(db.scalars(query).unique())
        names = dict(db.execute(select(Person.id, Person.name)).all())
        return render_template("admin/outbox.html", deliveries=deliveries, names=names, status=status,
                               kind_name=kind_name, status_names=DELIVERY_STATUS_NAMES, channel_names=CHANNEL_NAMES)


@bp.get("/people")
@login_required
def people() -> str:
    with _read_db() as db:
        everyone = list(db.scalars(select(Person).outerjoin(PersonRole).order_by(Person.name)).unique())
        codes = {c["name"]: c for c in outstanding_codes(db, _services().now()) if c["kind"] == "person"}
        return render_template("admin/people.html", people=everyone, codes=codes)
