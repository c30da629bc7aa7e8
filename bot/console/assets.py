"""资产: the register of things (filtered by room, category, status, custodian; repairs counted), one
thing's file (一物一档: repairs, loans, moves, stocktakes, disposal), what is lent out and who holds which
key, the supplies' stock, the requests waiting (借用 J / 领用 L / 报废 BF, answered with the chat's own
批准 / 驳回) and the stocktake (盘点: started and ended here as with 盘点 开始 / 盘点 结束; the things it found in
another room moved there with one 调动)."""

from __future__ import annotations

from datetime import date

from flask import Response, abort, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from bot.audit import record
from bot.console import base
from bot.console.base import _CONTROL, acting_person, as_command, bp, chat_context, requires
from bot.places import find_asset
from handlers.assets import approvals
from handlers.assets.common import status_name
from handlers.assets.register import move_asset
from handlers.assets.stocktake import (
    STARTED,
    begin_stocktake,
    expected,
    finish_stocktake,
    open_stocktake,
    result,
)
from models import (
    Asset,
    AssetEvent,
    AssetLoan,
    Disposal,
    Person,
    RepairTicket,
    Room,
    Stocktake,
    StocktakeCheck,
    Supply,
    SupplyMove,
)
from models.assets.loans import LOAN_STATUS_NAMES, OUT
from models.assets.loans import PENDING as LOAN_PENDING
from models.assets.register import EVENT_NAMES, REQUEST_NAMES
from models.assets.register import PENDING as DISPOSAL_PENDING
from models.assets.supplies import ISSUE
from models.assets.supplies import PENDING as SUPPLY_PENDING
from models.repair import ASSET_STATUS_NAMES, KEY

SHOWN = 500
NO_STOCKTAKE = "当前没有进行中的盘点。"
BAD_SCOPE = "不能开始盘点"
CANNOT_END = "不能结束盘点"
NO_MOVES = "没有要登记的调动"
NO_MOVES_TEXT = "这次盘点没有在别的房间找到的资产，或盘点还没有结束。"
DECISIONS = {"approve": "批准", "decline": "驳回"}


def _today() -> date:
    svc = base.services()
    return svc.now().astimezone(svc.settings.tz).date()


def _filters() -> dict[str, str]:
    args = {k: request.args.get(k, "").strip()[:64] for k in ("room", "category", "status", "custodian")}
    if any(_CONTROL.search(v) for v in args.values()) or \
            (args["status"] and args["status"] not in ASSET_STATUS_NAMES.values()):
        abort(400)
    return args


@bp.get("/assets")
@requires("admin", "staff", "bureau")
def assets() -> str:
    """The register: every thing with its room, custodian, status and how often it was repaired, filtered
    by room, category, status (在用 / 借出 / 维修中 / 已报废) and custodian."""
    args = _filters()
    repaired = (select(RepairTicket.asset_id, func.count().label("tickets"),
                       func.max(RepairTicket.filed_at).label("last_filed"))
                .group_by(RepairTicket.asset_id).subquery())
    tickets = func.coalesce(repaired.c.tickets, 0)
    query = (select(Asset, tickets, repaired.c.last_filed).outerjoin(repaired, repaired.c.asset_id == Asset.id)
             .options(joinedload(Asset.room), joinedload(Asset.custodian)))
    if args["room"]:
        query = query.join(Room, Room.id == Asset.room_id).where(Room.name.contains(args["room"], autoescape=True))
    if args["category"]:
        query = query.where(Asset.category == args["category"])
    if args["custodian"]:
        query = query.join(Person, Person.id == Asset.custodian_id).where(
            Person.name.contains(args["custodian"], autoescape=True))
    with base.read_db() as db:
        found = db.execute(query.order_by(tickets.desc(), repaired.c.last_filed.desc(), Asset.code)).all()
        rows = [(a, n, last, status_name(db, a)) for a, n, last in found]
        if args["status"]:
            rows = [r for r in rows if r[3] == args["status"]]
        categories = list(db.scalars(select(Asset.category).distinct().order_by(Asset.category)))
        return render_template("admin/assets.html", rows=rows[:SHOWN], total=len(rows), shown=SHOWN, args=args,
                               categories=categories, statuses=list(ASSET_STATUS_NAMES.values()))


@bp.get("/assets/<path:code>")
@requires("admin", "staff", "bureau")
def asset(code: str) -> str:
    """一物一档: the thing and everything that happened to it."""
    if _CONTROL.search(code):
        abort(404)
    with base.read_db() as db:
        found = find_asset(db, code)
        if found is None:
            abort(404)
        tickets = list(db.scalars(select(RepairTicket).where(RepairTicket.asset_id == found.id)
                                  .order_by(RepairTicket.number.desc())))
        loans = list(db.scalars(select(AssetLoan).where(AssetLoan.asset_id == found.id)
                                .order_by(AssetLoan.number.desc())))
        events = list(db.scalars(select(AssetEvent).where(AssetEvent.asset_id == found.id)
                                 .order_by(AssetEvent.at.desc(), AssetEvent.id.desc())))
        checks = list(db.scalars(select(StocktakeCheck).where(StocktakeCheck.asset_id == found.id)
                                 .order_by(StocktakeCheck.at.desc())))
        disposals = list(db.scalars(select(Disposal).where(Disposal.asset_id == found.id)
                                    .order_by(Disposal.number.desc())))
        return render_template("admin/asset.html", asset=found, status=status_name(db, found), tickets=tickets,
                               loans=loans, events=events, checks=checks, disposals=disposals,
                               loan_names=LOAN_STATUS_NAMES, event_names=EVENT_NAMES, request_names=REQUEST_NAMES)


@bp.get("/asset-loans")
@requires("admin", "staff", "bureau")
def asset_loans() -> str:
    """What is out now (overdue first) and who holds each copy of each key."""
    today = _today()
    with base.read_db() as db:
        out = list(db.scalars(select(AssetLoan).where(AssetLoan.status == OUT)
                              .options(joinedload(AssetLoan.asset), joinedload(AssetLoan.borrower))
                              .order_by(AssetLoan.due_on, AssetLoan.number)))
        late = {loan.id: (today - loan.due_on).days for loan in out if loan.due_on and loan.due_on < today}
        things = [loan for loan in out if loan.asset.kind != KEY]
        keys = list(db.scalars(select(Asset).where(Asset.kind == KEY).options(joinedload(Asset.room))
                               .order_by(Asset.code)))
        holders = {k.id: [loan for loan in out if loan.asset_id == k.id] for k in keys}
        return render_template("admin/asset_loans.html", things=things, late=late, keys=keys, holders=holders,
                               overdue=sum(1 for loan in things if loan.id in late))


@bp.get("/supplies")
@requires("admin", "staff", "bureau")
def supplies() -> str:
    """Each supply's stock against its reorder level, the low ones first."""
    with base.read_db() as db:
        items = list(db.scalars(select(Supply).options(joinedload(Supply.keeper)).order_by(Supply.name)))
        low = [s for s in items if s.reorder_level and s.stock < s.reorder_level]
        return render_template("admin/supplies.html", items=low + [s for s in items if s not in low],
                               low={s.id for s in low})


@bp.get("/asset-approvals")
@requires("admin", "staff", "bureau")
def asset_approvals() -> str:
    """The requests waiting for an answer: 借用 (J), 领用 (L), 报废 (BF)."""
    with base.read_db() as db:
        loans = list(db.scalars(select(AssetLoan).where(AssetLoan.status == LOAN_PENDING)
                                .order_by(AssetLoan.number)))
        moves = list(db.scalars(select(SupplyMove).where(SupplyMove.status == SUPPLY_PENDING,
                                                         SupplyMove.kind == ISSUE).order_by(SupplyMove.number)))
        disposals = list(db.scalars(select(Disposal).where(Disposal.status == DISPOSAL_PENDING)
                                    .order_by(Disposal.number)))
        return render_template("admin/asset_approvals.html", loans=loans, moves=moves, disposals=disposals,
                               done=request.args.get("done", "")[:300])


@bp.post("/asset-approvals/<code>/<decision>")
@requires("admin", "staff")
def asset_decide(code: str, decision: str) -> Response:
    """批准 / 驳回 as the signed-in person sending it in the chat (the same checks: who may answer, what is left)."""
    if decision not in DECISIONS:
        abort(404)
    code = code.upper()
    reason = " ".join(request.form.get("reason", "").split())[:200]
    if approvals.CODE_RE.match(code) is None or _CONTROL.search(reason):
        abort(400)
    with base.db() as db, db.begin():
        person = acting_person(db)
        ctx = chat_context(db, person)
        answer = approvals.answer(as_command(f"{DECISIONS[decision]} {code} {reason}".strip()), ctx).text
        record(db, person.name, f"asset_{decision}", code, f"{reason}｜{answer}" if reason else answer, at=ctx.now)
    return redirect(url_for("console.asset_approvals", done=answer))  # type: ignore[return-value]


@bp.get("/stocktake")
@requires("admin", "staff", "bureau")
def stocktake() -> str:
    """The stocktake under way (how far), or the last one's result; admin starts and ends one here."""
    with base.read_db() as db:
        take = open_stocktake(db)
        last = take or db.scalar(select(Stocktake).order_by(Stocktake.id.desc()).limit(1))
        found = result(db, last) if last is not None else None
        buildings = sorted({b for b in db.scalars(select(Room.building).distinct()) if b})
        return render_template("admin/stocktake.html", take=take, last=last, result=found,
                               done=request.args.get("done", "")[:500], buildings=buildings,
                               count=len(expected(db, take)) if take else 0)


@bp.post("/stocktake/start")
@requires("admin")
def stocktake_start() -> Response | tuple[str, int]:
    scope = " ".join(request.form.get("scope", "").split())
    if len(scope) > 64 or _CONTROL.search(scope):
        abort(400)
    with base.db() as db, db.begin():
        person = acting_person(db)
        now = base.services().now()
        take = begin_stocktake(db, scope, person, now)
        if isinstance(take, str):  # unknown scope, or one under way: nothing was added
            return render_template("admin/message.html", title=BAD_SCOPE, text=take,
                                   back=url_for("console.stocktake")), 400
        answer = STARTED.format(scope=take.scope_name, count=len(expected(db, take)))
        record(db, person.name, "stocktake_start", take.scope_name, answer, at=now)
    return redirect(url_for("console.stocktake", done=answer))  # type: ignore[return-value]


@bp.post("/stocktake/end")
@requires("admin")
def stocktake_end() -> Response | tuple[str, int]:
    with base.db() as db, db.begin():
        take = open_stocktake(db)
        if take is None:
            return render_template("admin/message.html", title=CANNOT_END, text=NO_STOCKTAKE,
                                   back=url_for("console.stocktake")), 400
        person = acting_person(db)
        now = base.services().now()
        answer = finish_stocktake(db, take, now)
        record(db, person.name, "stocktake_end", take.scope_name, answer, at=now)
    return redirect(url_for("console.stocktake", done=answer))  # type: ignore[return-value]


@bp.post(f"/stocktake/<int(max={base.MAX_ID}):take_id>/moves")
@requires("admin", "staff")
def stocktake_moves(take_id: int) -> Response | tuple[str, int]:
    """A finished stocktake's things found in another room, moved there in one step (调动, as in the chat)."""
    with base.db() as db, db.begin():
        take = db.get(Stocktake, take_id)
        if take is None:
            abort(404)
        moved = [c for c in result(db, take).moved if c.asset is not None and c.room is not None]
        if take.ended_at is None or not moved:
            return render_template("admin/message.html", title=NO_MOVES, text=NO_MOVES_TEXT,
                                   back=url_for("console.stocktake")), 400
        person = acting_person(db)
        ctx = chat_context(db, person)
        answers = []
        for c in moved:
            assert c.asset is not None and c.room is not None
            answer = move_asset(as_command(f"调动 {c.asset.code} {c.room.name}"), ctx).text
            record(db, person.name, "asset_move", c.asset.code, answer, at=ctx.now)
            answers.append(answer)
    return redirect(url_for("console.stocktake", done=" ".join(answers)))  # type: ignore[return-value]
