"""报修: the tickets (filtered), one ticket with its whole history, photos and pushes, the actions on it
(指派, 转派, 完成, 重新打开, 撤销, merge, through the chat's own functions) and charts; the assets' pages
(their repair history among the rest) are bot/console/assets.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from statistics import median

from flask import Response, abort, g, redirect, render_template, request, url_for
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from bot.audit import record
from bot.console import base
from bot.console.base import (
    _CONTROL,
    MAX_ID,
    ConsoleContext,
    acting_person,
    as_command,
    bp,
    chat_context,
    requires,
    send_photo,
)
from bot.outbox import REPAIR_SUBJECT, kind_name
from bot.text import day_bounds
from handlers.repair.chat import (
    UNKNOWN_TICKET,
    describe,
    finish_ticket,
    reopen_ticket,
    transfer_ticket,
    withdraw_ticket,
)
from handlers.repair.rules import WORK_ROLES, category_map, follow
from models import Asset, Person, PersonRole, Push, RepairTicket, TicketEvent, TicketPhoto
from models.repair import ACTIVE, FOLLOW_UP, STATUS_NAMES

SHOWN = 200


@bp.get("/repairs")
@requires("admin", "staff", "bureau")
def repairs() -> str:
    """The tickets, filtered by status, category, place, reporter, dates and text; staff see their
    own categories first."""
    args = {k: request.args.get(k, "").strip()[:100] for k in ("category", "place", "reporter", "q", "from", "to")}
    status = request.args.get("status", "active")
    if status not in ("active", "all", *STATUS_NAMES) or any(_CONTROL.search(v) for v in args.values()):
        abort(400)
    tz = base.services().settings.tz
    query = select(RepairTicket).options(joinedload(RepairTicket.reporter), joinedload(RepairTicket.assignee))
    if status == "active":
        query = query.where(RepairTicket.status.in_(ACTIVE))
    elif status in STATUS_NAMES:
        query = query.where(RepairTicket.status == status)
    if args["category"]:
        query = query.where(RepairTicket.category == args["category"])
    if args["place"]:
        query = query.where(RepairTicket.place.contains(args["place"], autoescape=True))
    if args["q"]:
        query = query.where(RepairTicket.description.contains(args["q"], autoescape=True))
    if args["reporter"]:
        query = query.join(Person, Person.id == RepairTicket.reporter_id).where(
            Person.name.contains(args["reporter"], autoescape=True))
    if (first := day_asked(args["from"])) is not None:
        query = query.where(RepairTicket.filed_at >= day_bounds(first, tz)[0])
    if (last := day_asked(args["to"])) is not None:
        query = query.where(RepairTicket.filed_at < day_bounds(last + timedelta(days=1), tz)[0])
    with base.read_db() as db:
        mine: list[str] = []
        if "admin" not in g.roles and "staff" in g.roles:
            me = db.get(Person, g.person_id)
            mine = me.category_list if me else []
        order = [case((RepairTicket.category.in_(mine), 0), else_=1)] if mine else []
        tickets = list(db.scalars(query.order_by(*order, RepairTicket.number.desc()).limit(SHOWN)).unique())
        categories = [name for name, _ in category_map(db)]
        return render_template("admin/repairs.html", tickets=tickets, status=status, args=args,
                               categories=categories, mine=mine, shown=SHOWN)


def day_asked(text: str) -> date | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        abort(400)


def _ticket(db: Session, code: str) -> RepairTicket:
    number = base.number(code.upper().removeprefix("R"))
    found = db.scalar(select(RepairTicket).where(RepairTicket.number == number)) if number is not None else None
    if found is None:
        abort(404)
    return found


@bp.get("/repairs/<code>")
@requires("admin", "staff", "bureau")
def ticket(code: str) -> str:
    with base.read_db() as db:
        found = _ticket(db, code)
        pushes = list(db.scalars(select(Push).where(Push.subject == REPAIR_SUBJECT, Push.subject_id == found.id)
                                 .options(selectinload(Push.deliveries)).order_by(Push.id)))
        told = {d.person_id for p in pushes for d in p.deliveries if d.person_id is not None}
        names = dict(db.execute(select(Person.id, Person.name).where(Person.id.in_(told))).all()) if told else {}
        workers = list(db.scalars(select(Person).join(PersonRole).where(PersonRole.role.in_(WORK_ROLES))
                                  .order_by(Person.name)).unique())
        return render_template("admin/ticket.html", ticket=found, text=describe(found, base.services().settings.tz),
                               pushes=pushes, names=names, kind_name=kind_name, workers=workers,
                               done=request.args.get("done", "")[:300], active=found.status in ACTIVE)


# -- acting on a ticket: the chat's own functions, so the console and the chat behave the same ----------
ACTIONS = {
    "assign": ("转派 {code} {name}", transfer_ticket, "ticket_assign"),
    "transfer": ("转派 {code} {name}", transfer_ticket, "ticket_transfer"),
    "complete": ("完成 {code} {note}", finish_ticket, "ticket_complete"),
    "reopen": ("未修好 {code} {note}", reopen_ticket, "ticket_reopen"),
    "withdraw": ("撤销 {code} {note}", withdraw_ticket, "ticket_withdraw"),
}
MERGED = "已合并到 {code}"
MERGED_NOTE = "（由 {code} 合并）{text}"
MERGE_SAME = "不能把报修单合并到它自己。"
MERGE_CLOSED = "{code} 已结束（{status}），只能合并两张未完成的报修单。"
NEED_NAME = "请选择要指派的人。"


@bp.post("/repairs/<code>/<action>")
@requires("admin", "staff")
def act(code: str, action: str) -> Response:
    """指派, 转派, 完成 (with a note), 重新打开, 撤销: as the signed-in person sending the command."""
    if action not in ACTIONS and action != "merge":
        abort(404)
    name = request.form.get("name", "").strip()[:64]
    note = " ".join(request.form.get("note", "").split())[:500]
    if _CONTROL.search(name):
        abort(400)
    with base.db() as db, db.begin():
        found = _ticket(db, code)
        person = acting_person(db)
        ctx = chat_context(db, person)
        if action == "merge":
            answer, target = _merge(db, ctx, found, request.form.get("into", "").strip())
        else:
            template, handler, audit_action = ACTIONS[action]
            if action in ("assign", "transfer") and not name:
                answer, target = NEED_NAME, found.code
            else:
                answer = handler(as_command(template.format(code=found.code, name=name, note=note)), ctx).text
                target = found.code
                record(db, person.name, audit_action, found.code, " ".join(w for w in (name, note) if w) + f"｜{answer}",
                       at=ctx.now)
    return redirect(url_for("console.ticket", code=target, done=answer))  # type: ignore[return-value]


def _merge(db: Session, ctx: ConsoleContext, duplicate: RepairTicket, into: str) -> tuple[str, str]:
    """Merge `duplicate` into the ticket `into`: its reporter and followers follow that ticket, its words
    are kept there as a report, and it is withdrawn (its people told) with 已合并到 R<n>."""
    kept = db.scalar(select(RepairTicket).where(RepairTicket.number == base.number(into.upper().removeprefix("R"))))
    if kept is None:
        return UNKNOWN_TICKET.format(code=into[:20]), duplicate.code
    if kept.id == duplicate.id:
        return MERGE_SAME, duplicate.code
    for one in (kept, duplicate):
        if one.status not in ACTIVE:
            return MERGE_CLOSED.format(code=one.code, status=STATUS_NAMES[one.status]), duplicate.code
    answer = withdraw_ticket(as_command(f"撤销 {duplicate.code} {MERGED.format(code=kept.code)}"), ctx).text
    for person in [duplicate.reporter, *duplicate.follower_people]:
        if person is not None:
            follow(db, kept, person)
    kept.events.append(TicketEvent(kind=FOLLOW_UP, person=duplicate.reporter, created_at=ctx.now, urgent=duplicate.urgent,
                                   text=MERGED_NOTE.format(code=duplicate.code, text=duplicate.description)))
    record(db, ctx.acting.name if ctx.acting else "", "ticket_merge", f"{duplicate.code} → {kept.code}", answer,
           at=ctx.now)
    return f"{MERGED.format(code=kept.code)}：{answer}", kept.code


# -- charts: tickets per week by category, time to accept and to fix, repeat failures -----------------
WEEKS = 8


@bp.get("/repairs/charts")
@requires("admin", "staff", "bureau")
def charts() -> str:
    svc = base.services()
    today = svc.now().astimezone(svc.settings.tz).date()
    monday = today - timedelta(days=today.weekday())
    weeks = [monday - timedelta(weeks=n) for n in range(WEEKS - 1, -1, -1)]
    since = day_bounds(weeks[0], svc.settings.tz)[0]
    with base.read_db() as db:
        rows = db.execute(select(RepairTicket.filed_at, RepairTicket.category, RepairTicket.accepted_at,
                                 RepairTicket.done_at).where(RepairTicket.filed_at >= since)).all()
        repeats = db.execute(
            select(Asset.code, Asset.name, func.count(RepairTicket.id), func.sum(RepairTicket.reopen_count))
            .join(RepairTicket, RepairTicket.asset_id == Asset.id).group_by(Asset.id, Asset.code, Asset.name)
            .having(func.count(RepairTicket.id) + func.sum(RepairTicket.reopen_count) > 1)
            .order_by(func.count(RepairTicket.id).desc()).limit(20)).all()
    counts: dict[tuple[date, str], int] = {}
    for filed, category, _, _ in rows:
        local = filed.astimezone(svc.settings.tz).date()
        week = local - timedelta(days=local.weekday())
        counts[week, category] = counts.get((week, category), 0) + 1
    categories = sorted({c for _, c in counts})
    top = max(counts.values(), default=0)
    per_week = [(week, [(c, counts.get((week, c), 0), bar(counts.get((week, c), 0), top)) for c in categories])
                for week in weeks]
    accept = [(a - f).total_seconds() / 3600 for f, _, a, _ in rows if a is not None]
    fix = [(d - f).total_seconds() / 3600 for f, _, _, d in rows if d is not None]
    return render_template("admin/repair_charts.html", per_week=per_week, categories=categories,
                           accept=hours(accept), fix=hours(fix), accepted=len(accept), fixed=len(fix),
                           repeats=repeats, weeks=WEEKS)


def bar(value: int, top: int) -> str:
    """The CSS class of a bar `value` long when `top` fills it (w0 … w20: 5% steps; no inline style)."""
    return f"w{round(20 * value / top) if top else 0}"


def hours(values: list[float]) -> str:
    if not values:
        return "—"
    middle = median(values)
    return f"{middle:.1f} 小时" if middle < 48 else f"{middle / 24:.1f} 天"


@bp.get(f"/photos/<int(max={MAX_ID}):photo_id>")
@requires("admin", "staff", "bureau")
def photo(photo_id: int) -> Response:
    return send_photo(TicketPhoto, photo_id)
