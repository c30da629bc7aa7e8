"""The admin console under /admin: sign-in, today's overview, repairs with their photos, the assets'
repair history, a month's canteen feedback with its photos, the bus, duty, the outbox and people.
Read-only views over what the bot records; changes go through the bot and the CLI. Only admins with a
console password (`houqin console-password NAME`) may sign in."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from bot.outbox import kind_name, short_reason, template_warning
from bot.places import find_asset
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
from models.console import ConsoleAccount
from models.identity import ROLE_NAMES
from models.outbox import FAILED, UNDELIVERABLE, DeliveryAlert
from models.repair import ACTIVE, STATUS_NAMES

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates")

MAX_FAILED = 5
LOCK_FOR = timedelta(minutes=15)
BAD_LOGIN = "姓名或密码不对。"
LOCKED = "登录失败次数过多，请 15 分钟后再试。"
NOT_ADMIN = "只有管理员可以登录控制台。"
ALERTS_SHOWN = 50


def _services() -> Services:
    return current_app.extensions["houqin"]  # type: ignore[no-any-return]


def _db() -> Session:
    return _services().factory()


def set_password(db: Session, person: Person, password: str) -> None:
    if "admin" not in person.role_set:
        raise ValueError(NOT_ADMIN)
    if len(password) < 8:
        raise ValueError("密码至少 8 位。")
    account = db.get(ConsoleAccount, person.id)
    if account is None:
        db.add(ConsoleAccount(person_id=person.id, password_hash=generate_password_hash(password)))
    else:
        account.password_hash, account.failed_logins, account.locked_until = generate_password_hash(password), 0, None


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return str(session["csrf"])


def _check_csrf() -> None:
    token = request.form.get("csrf", "")
    if not token or not hmac.compare_digest(token, session.get("csrf", "")):
        abort(400)


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not session.get("person_id"):
            return redirect(url_for("console.login", next=request.path))
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


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = ""
    if request.method == "POST":
        _check_csrf()
        name, password = request.form.get("name", "").strip(), request.form.get("password", "")
        now = _services().now()
        with _db() as db, db.begin():
            person = db.scalar(select(Person).join(ConsoleAccount, ConsoleAccount.person_id == Person.id)
                               .where(Person.name == name))
            account = db.get(ConsoleAccount, person.id) if person else None
            if account is not None and account.locked_until and account.locked_until > now:
                error = LOCKED
            elif person is None or account is None or not check_password_hash(account.password_hash, password):
                error = BAD_LOGIN
                if account is not None:
                    account.failed_logins += 1
                    if account.failed_logins >= MAX_FAILED:
                        account.failed_logins, account.locked_until = 0, now + LOCK_FOR
            elif "admin" not in person.role_set:
                error = NOT_ADMIN
            else:
                account.failed_logins, account.locked_until = 0, None
                session.clear()
                session["person_id"], session["name"] = person.id, person.name
                target = request.args.get("next", "")
                return redirect(target if target.startswith("/admin") else url_for("console.overview"))
    return render_template("admin/login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout() -> Response:
    _check_csrf()
    session.clear()
    return redirect(url_for("console.login"))  # type: ignore[return-value]


@bp.get("/")
@login_required
def overview() -> str:
    services = _services()
    day = services.now().astimezone(services.settings.tz).date()
    start, end = day_bounds(day, services.settings.tz)
    with _db() as db:
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
    if wanted and not wanted.isdigit():
        abort(400)
    with _db() as db, db.begin():
        query = select(DeliveryAlert).where(DeliveryAlert.acknowledged_at.is_(None))
        if wanted:
            query = query.where(DeliveryAlert.id == int(wanted))
        for alert in db.scalars(query):
            alert.acknowledged_at, alert.acknowledged_by = _services().now(), str(session.get("name", ""))
    return redirect(url_for("console.overview"))  # type: ignore[return-value]


@bp.get("/repairs")
@login_required
def repairs() -> str:
    status = request.args.get("status", "active")
    with _db() as db:
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
    number = code.upper().removeprefix("R")
    if not number.isdigit():
        abort(404)
    with _db() as db:
        found = db.scalar(select(RepairTicket).where(RepairTicket.number == int(number)))
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
    with _db() as db:
        rows = db.execute(select(Asset, tickets, repaired.c.last_filed)
                          .outerjoin(repaired, repaired.c.asset_id == Asset.id).options(joinedload(Asset.room))
                          .order_by(tickets.desc(), repaired.c.last_filed.desc(), Asset.code)).all()
        return render_template("admin/assets.html", rows=rows)


@bp.get("/assets/<path:code>")
@login_required
def asset(code: str) -> str:
    with _db() as db:
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
    with _db() as db:
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
    """?month=YYYY-MM as its first day; this month without one; 400 for anything else."""
    if not text:
        return month_span(today)[0]
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        abort(400)


@bp.get("/photos/<int:photo_id>")
@login_required
def photo(photo_id: int) -> Response:
    return _send_photo(TicketPhoto, photo_id)


@bp.get("/canteen-photos/<int:photo_id>")
@login_required
def canteen_photo(photo_id: int) -> Response:
    return _send_photo(FeedbackPhoto, photo_id)


def _send_photo(model: type[DownloadedPhoto], photo_id: int) -> Response:
    """A downloaded photo's file, if it is saved, inside the storage folder and an image by its first
    bytes; served as that image type (never the type it was stored with) and not to be sniffed."""
    with _db() as db:
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
    with _db() as db:
        query = select(Delivery).order_by(Delivery.id.desc()).limit(200)
        if status:
            query = query.where(Delivery.status == status)
        deliveries = list(db.scalars(query).unique())
        names = dict(db.execute(select(Person.id, Person.name)).all())
        return render_template("admin/outbox.html", deliveries=deliveries, names=names, status=status)


@bp.get("/people")
@login_required
def people() -> str:
    with _db() as db:
        everyone = list(db.scalars(select(Person).outerjoin(PersonRole).order_by(Person.name)).unique())
        codes = {c["name"]: c for c in outstanding_codes(db, _services().now()) if c["kind"] == "person"}
        return render_template("admin/people.html", people=everyone, codes=codes)
