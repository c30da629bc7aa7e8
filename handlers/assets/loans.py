"""Borrowing and returning registered things: 借 <物品或编号> [数量] [归还日期], 还 <物品或编号> [数量],
我借的, and the same by scanning a thing's QR code (借用 / 归还 beside 报修). A thing marked as needing
approval is lent when its lender (custodian, the room's responsible person, or its category's staff)
sends 批准 J<n> (handlers/assets/approvals.py). The rolled-up due reminders and the overdue escalation
are jobs in scheduler/assets/loans.py."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from bot.engine import Context, Conversation, Incoming, Reply
from bot.numbering import allocate_number
from bot.outbox import told
from bot.school import get_setting
from bot.text import day_label
from handlers.assets.common import (
    ASSET_ROLES,
    BAD_DAY,
    TOPIC,
    Request,
    due_label,
    held,
    in_repair,
    is_key,
    lenders,
    one_thing,
    quantity_label,
    read_request,
    record,
)
from models import Asset, AssetLoan, Person
from models.assets.loans import OUT, PENDING, RETURNED
from models.assets.register import LENT
from models.assets.register import RETURNED as RETURNED_EVENT
from models.repair import DISPOSED, IN_USE, ON_LOAN

HELP_BORROW = "借 物品或编号 [数量] [归还日期] — 借用登记的物品（也可扫物品二维码选「借用」）"
HELP_RETURN = "还 物品或编号 [数量] — 归还借用的物品"
HELP_MINE = "我借的 — 我借用中的物品和钥匙"
USAGE_BORROW = "请按格式发送：借 物品或编号 [数量] [归还日期]，例如：借 篮球 3 {day}"
USAGE_RETURN = "请按格式发送：还 物品或编号 [数量]，例如：还 篮球"
NOT_LENDABLE = "{thing} 不外借。如有需要请联系{keeper}。"
KEY_WORDS = "{thing} 是钥匙，请发送「领钥匙 {room}」。"
DISPOSED_THING = "{thing} 已报废，不能借用。"
IN_REPAIR_THING = "{thing} 正在维修，暂不能借用。"
NONE_LEFT = "{thing} 已全部借出（{who}）。"
TOO_FEW = "{thing} 现在只剩 {left} 个可借，你要借 {wanted} 个。"
LENT_REPLY = "已借用 {code}：{what}，请于 {due} 前归还。归还时发送「还 {name}」。"
ASKED_REPLY = "已申请借用 {code}：{what}（至 {due}），需{lenders}批准。{told}"
ASK_LENDER = "【借用申请】{who}申请借用 {what}（{code}），至 {due}。同意请回复「批准 {code}」，不同意请回复「驳回 {code} 理由」。"
RETURNED_REPLY = "已归还 {codes}：{what}。"
NOT_BORROWED = "你没有借用 {thing}。发送「我借的」查看你借用中的物品。"
SOMEONE_ELSES = "{thing} 是{who}借用的（{code}），只能由借用人归还。"
ALREADY_RETURNED = "你借用的 {thing}（{code}）已于 {day} 归还，不用再还。"
STILL_PENDING = "你借用 {thing} 的申请 {code} 还在等待批准，尚未借出。"
RETURN_TOO_MANY = "你借用的 {thing} 只有 {mine} 个未还，不能归还 {wanted} 个。"
NOTHING_BORROWED = "你目前没有借用中的物品。"
MINE_HEADER = "你借用中的物品："
MINE_LINE = "{code} {what} · {state}"
OVERDUE_MARK = "已逾期"
WAITING_MARK = "待批准"
SCAN_CHOICE = ("扫到：{place}。请回复：\n借用 [数量] [归还日期] — 借走\n归还 — 归还你借的\n"
               "或直接描述故障报修（如：投影仪不亮）。")
BORROW_WORDS = {"借用", "借", "借走"}
RETURN_WORDS = {"归还", "还", "还回"}

borrow = Conversation("asset_borrow", title="借用", keywords=["借", "借用"], roles=ASSET_ROLES, help=HELP_BORROW,
                      topic=TOPIC, slips=False)
give_back = Conversation("asset_return", title="归还", keywords=["还", "归还"], roles=ASSET_ROLES, help=HELP_RETURN,
                         topic=TOPIC, slips=False)
mine = Conversation("asset_mine", title="我借的", keywords=["我借的", "我借用的"], roles=ASSET_ROLES, help=HELP_MINE,
                    topic=TOPIC, slips=False)


def loan_days(ctx: Context) -> int:
    return int(get_setting(ctx.db, "loan_days"))


def scanned_asset(ctx: Context) -> Asset | None:
    """The thing the sender scanned just before (the scan's choice in progress), if any."""
    state = ctx.sender.state
    ident = state.data.get("asset_choice") if state is not None else None
    return ctx.db.get(Asset, int(ident)) if ident else None


@borrow.entry
def start_borrow(msg: Incoming, ctx: Context) -> Reply:
    today = ctx.local_now.date()
    scanned = scanned_asset(ctx)
    request = read_request(msg.kept_args, today)
    if scanned is not None:  # 借用 2 / 还 after a scan: the scanned thing
        with_scanned = read_request([scanned.code, *msg.kept_args], ctx.local_now.date())
        if with_scanned.name == scanned.code:
            return lend(ctx, scanned, with_scanned)
    if not request.name:
        return Reply.end(USAGE_BORROW.format(day=day_label(today + timedelta(days=7))))
    if request.error:
        return Reply.end(request.error)
    found = one_thing(ctx.db, request.name, kind=None)
    if isinstance(found, str):
        return Reply.end(found)
    return lend(ctx, found, request)


def lend(ctx: Context, asset: Asset, request: Request) -> Reply:
    """Lend `asset` (or ask its lender to) as `request` says; every refusal changes nothing."""
    if request.error:
        return Reply.end(request.error)
    person = ctx.person
    assert person is not None
    today = ctx.local_now.date()
    if is_key(asset):
        return Reply.end(KEY_WORDS.format(thing=asset.label, room=asset.room.name if asset.room else asset.name))
    if asset.status == DISPOSED:
        return Reply.end(DISPOSED_THING.format(thing=asset.label))
    if not asset.lendable:
        return Reply.end(NOT_LENDABLE.format(thing=asset.label,
                                             keeper="、".join(p.name for p in lenders(ctx.db, asset))))
    if in_repair(ctx.db, asset):
        return Reply.end(IN_REPAIR_THING.format(thing=asset.label))
    wanted = request.quantity or 1
    left = asset.quantity - held(ctx.db, asset)
    if left <= 0:
        holders = ctx.db.scalars(select(AssetLoan).where(AssetLoan.asset_id == asset.id,
                                                         AssetLoan.status.in_((OUT, PENDING))))
        who = "、".join(dict.fromkeys(f"{loan.borrower.name}" for loan in holders))
        return Reply.end(NONE_LEFT.format(thing=asset.label, who=who))
    if wanted > left:
        return Reply.end(TOO_FEW.format(thing=asset.label, left=left, wanted=wanted))
    due = request.due or today + timedelta(days=loan_days(ctx))
    if due < today:
        return Reply.end(BAD_DAY.format(today=day_label(today)))
    loan = AssetLoan(number=allocate_number(ctx.db, AssetLoan.number), asset=asset, borrower=person,
                     quantity=wanted, asked_at=ctx.now, due_on=due)
    ctx.db.add(loan)
    what = quantity_label(asset, wanted)
    if asset.needs_approval:
        loan.status = PENDING
        ctx.db.flush()
        approvers = lenders(ctx.db, asset)
        notice = ctx.outbox.notify(approvers, "loan_request", ASK_LENDER.format(
            who=person.name, what=what, code=loan.code, due=due_label(due)),
            fields={"code": loan.code, "item": what, "person": person.name})
        return Reply.end(ASKED_REPLY.format(code=loan.code, what=what, due=due_label(due),
                                            lenders="、".join(p.name for p in approvers), told=told(notice)))
    hand_out(ctx, loan)
    return Reply.end(LENT_REPLY.format(code=loan.code, what=what, due=due_label(due), name=asset.name))


def hand_out(ctx: Context, loan: AssetLoan, approver: Person | None = None) -> None:
    """The loan is out: recorded in the thing's history; a thing lent in full is 借出."""
    loan.status, loan.lent_at, loan.approver = OUT, ctx.now, approver
    ctx.db.flush()
    asset = loan.asset
    record(ctx.db, asset, LENT, ctx.now, loan.borrower,
           f"{loan.code} {loan.borrower.name} ×{loan.quantity} 至 {due_label(loan.due_on)}")
    if held(ctx.db, asset) >= asset.quantity and asset.status == IN_USE:
        asset.status = ON_LOAN


@give_back.entry
def start_return(msg: Incoming, ctx: Context) -> Reply:
    scanned = scanned_asset(ctx)
    request = read_request(msg.kept_args, ctx.local_now.date())
    if scanned is not None:  # 借用 2 / 还 after a scan: the scanned thing
        with_scanned = read_request([scanned.code, *msg.kept_args], ctx.local_now.date())
        if with_scanned.name == scanned.code:
            return take_back(ctx, scanned, with_scanned)
    if not request.name:
        return Reply.end(USAGE_RETURN)
    if request.error:
        return Reply.end(request.error)
    found = one_thing(ctx.db, request.name, kind=None)
    if isinstance(found, str):
        return Reply.end(found)
    return take_back(ctx, found, request)


def take_back(ctx: Context, asset: Asset, request: Request) -> Reply:
    """The sender returns what they borrowed of `asset`; another's loan, a double return or too many
    change nothing."""
    if request.error:
        return Reply.end(request.error)
    person = ctx.person
    assert person is not None
    loans = list(ctx.db.scalars(select(AssetLoan).where(AssetLoan.asset_id == asset.id)
                                .order_by(AssetLoan.id.desc())))
    ours = [loan for loan in loans if loan.borrower_id == person.id]
    open_ = [loan for loan in ours if loan.status == OUT]
    if not open_:
        if (pending := next((loan for loan in ours if loan.status == PENDING), None)) is not None:
            return Reply.end(STILL_PENDING.format(thing=asset.label, code=pending.code))
        theirs = next((loan for loan in loans if loan.status == OUT), None)
        if theirs is not None:
            return Reply.end(SOMEONE_ELSES.format(thing=asset.label, who=theirs.borrower.name, code=theirs.code))
        done = next((loan for loan in ours if loan.status == RETURNED and loan.returned_at), None)
        if done is not None and done.returned_at is not None:
            return Reply.end(ALREADY_RETURNED.format(thing=asset.label, code=done.code,
                                                     day=day_label(done.returned_at.astimezone(ctx.settings.tz).date())))
        return Reply.end(NOT_BORROWED.format(thing=asset.label))
    mine_count = sum(loan.quantity for loan in open_)
    wanted = request.quantity or mine_count
    if wanted > mine_count:
        return Reply.end(RETURN_TOO_MANY.format(thing=asset.label, mine=mine_count, wanted=wanted))
    codes, left = [], wanted
    for loan in sorted(open_, key=lambda x: x.id):
        if left <= 0:
            break
        if loan.quantity > left:  # part of it back: the part returned becomes its own returned row
            loan.quantity -= left
            back = AssetLoan(number=allocate_number(ctx.db, AssetLoan.number), asset=asset, borrower=person,
                             quantity=left, asked_at=loan.asked_at, lent_at=loan.lent_at, due_on=loan.due_on,
                             status=RETURNED, returned_at=ctx.now, copy_no=loan.copy_no)
            ctx.db.add(back)
            codes.append(loan.code)
            left = 0
        else:
            loan.status, loan.returned_at = RETURNED, ctx.now
            codes.append(loan.code)
            left -= loan.quantity
    ctx.db.flush()
    record(ctx.db, asset, RETURNED_EVENT, ctx.now, person, f"{'、'.join(codes)} {person.name} ×{wanted}")
    if asset.status == ON_LOAN and held(ctx.db, asset) < asset.quantity:
        asset.status = IN_USE
    return Reply.end(RETURNED_REPLY.format(codes="、".join(codes), what=quantity_label(asset, wanted)))


@mine.entry
def list_mine(msg: Incoming, ctx: Context) -> Reply:
    person = ctx.person
    assert person is not None
    loans = list(ctx.db.scalars(select(AssetLoan).where(AssetLoan.borrower_id == person.id,
                                                         AssetLoan.status.in_((OUT, PENDING)))
                                .order_by(AssetLoan.due_on, AssetLoan.id)))
    if not loans:
        return Reply.end(NOTHING_BORROWED)
    today = ctx.local_now.date()
    return Reply.end("\n".join([MINE_HEADER, *(MINE_LINE.format(code=loan.code, what=loan_what(loan),
                                                                state=loan_state(loan, today)) for loan in loans)]))


def loan_what(loan: AssetLoan) -> str:
    what = f"{loan.asset.name} 第{loan.copy_no}把" if loan.copy_no else quantity_label(loan.asset, loan.quantity)
    return f"{what}（{loan.asset.code}）"


def loan_state(loan: AssetLoan, today: date) -> str:
    if loan.status == PENDING:
        return WAITING_MARK
    due = f"应还 {due_label(loan.due_on)}"
    return f"{due} {OVERDUE_MARK}" if loan.due_on is not None and loan.due_on < today else due


def scan_choice(msg: Incoming, ctx: Context) -> Reply | None:
    """After scanning a thing's code: 借用 [数量] [日期] / 归还 [数量]; None for a repair description."""
    asset = ctx.db.get(Asset, int(ctx.data["asset_choice"]))
    if asset is None or not msg.text:
        return None
    word, *rest = msg.kept_text.split(" ")
    head = msg.text.split(" ", 1)[0]
    if head in BORROW_WORDS:
        return lend(ctx, asset, read_request([asset.code, *rest], ctx.local_now.date()))
    if head in RETURN_WORDS:
        return take_back(ctx, asset, read_request([asset.code, *rest], ctx.local_now.date()))
    return None


def offers_loan(ctx: Context, asset: Asset) -> bool:
    """A scan of `asset` offers 借用 / 归还: it is lent out, or the sender has it."""
    return asset.lendable or is_key(asset) or ctx.db.scalar(
        select(AssetLoan.id).where(AssetLoan.asset_id == asset.id, AssetLoan.status == OUT).limit(1)) is not None
