"""The repair conversations: 报修 (multi-turn, one-shot, or by scanning a room or asset QR code), photos,
duplicates, 接单 / 完成 / 转派, the reporter's rating or 未修好, 撤销, R<n>, 我的报修 and 巡查.

A ticket's category comes from its asset, or from the description through the keyword map the school
edits; it goes to the staff whose categories include it, else to admin. Urgent words alert staff and
admin at once. A report is a duplicate only of an active ticket for the same fault (rules.same_fault);
its reporter's words and photos join the ticket's history and whoever works on it is told. The
escalation jobs and the digest section are in scheduler/repair.py.
"""

from __future__ import annotations

import re
from datetime import timedelta, tzinfo

from sqlalchemy import or_, select

from bot.engine import DID_YOU_MEAN, Context, Conversation, Incoming, Reply
from bot.outbox import told
from bot.people import AmbiguousName, PersonNotFound, resolve_person
from bot.places import find_place_in, split_place
from bot.school import admins
from bot.text import (
    LEADING_PARTICLES,
    SEPARATOR_MARKS,
    bare_score,
    normalize,
    original_tail,
    strip_particles,
)
from handlers.assets.loans import SCAN_CHOICE, offers_loan, scan_choice
from handlers.assets.stocktake import scan as stocktake_scan
from handlers.repair.rules import (
    CODE_RE,
    HAZARD_CATEGORY,
    MAX_DESCRIPTION,
    MAX_PLACE,
    REPAIR_ROLES,
    WORK_ROLES,
    Place,
    asset_place,
    categorize,
    find_duplicate,
    follow,
    follow_up_lines,
    is_overdue,
    is_party,
    is_urgent,
    local_label,
    names_of,
    next_number,
    parties,
    place_from_data,
    resolve_place,
    responsible,
    shown_code,
    ticket_by_code,
    ticket_fields,
    ticket_push,
    withdrawal_line,
    workers_of,
)
from models import Asset, Person, RepairTicket, Room, TicketEvent, TicketFollower, TicketPhoto
from models.repair import (
    ACCEPTED,
    ACTIVE,
    CLOSED,
    COMPLETION,
    DONE,
    FOLLOW_UP,
    OPEN,
    REPORT,
    STATUS_NAMES,
    WITHDRAWAL,
    WITHDRAWN,
)

PHOTO_WINDOW = timedelta(minutes=10)
MAX_PHOTOS = 9
SKIP_WORDS = {"跳过", "不用", "没有", "无", "skip"}
OUT_OF_RANGE_RE = re.compile(r"-?\d{1,3}(?:\.\d+)?\s*[分星]?\s*[。.!！~～]*")  # 6, 0, 10分: not a 1-5 rating


class Step:
    PLACE = "place"
    DETAIL = "detail"
    PHOTO = "photo"
    CONFIRM = "confirm"  # a sentence taken for a repair: 是 files it


HELP_REPAIR = "报修 [地点 描述] — 报修（也可扫教室二维码），可附照片"
HELP_MY = "我的报修 — 未完成的报修（维修人员发「我的工单」先看待处理的）；R编号 — 查看报修单"
HELP_ACCEPT = "接单 R编号 — 接下报修单"
HELP_FINISH = "完成 R编号 [备注] — 报修已修好（可再发完成照片）"
HELP_TRANSFER = "转派 R编号 姓名 — 转给他人处理"
HELP_REOPEN = "未修好 R编号 — 完成后仍未修好，重新打开"
HELP_PATROL = "巡查 地点 问题 — 登记安全隐患"
HELP_WITHDRAW = "撤销 R编号 [理由] — 撤销自己尚未被接单的报修"

CANCEL_WORDS = ("算了", "不报了", "不用了", "不修了")  # mid-dialog, like 取消
PHOTO_FIRST = "如需报修，请先发送「报修」，再按提示上传照片。"
ASK_PLACE = "请告诉我报修地点（如：三(2)班、科学室、二楼东厕所）。发送「取消」可结束。"
ASK_PLACE_TEXT = "请用文字告诉我报修地点（如：三(2)班）。"
ASK_DETAIL = "地点：{place}。请描述问题（如：投影仪不亮）。"
ASK_DETAIL_TEXT = "请先用文字描述问题（如：投影仪不亮），照片可在提交后发送。"
QR_UNKNOWN = "这个二维码对应的地点已不在登记表中。"
FILED = "已提交报修 {code}：{place} · {category} · {description}。{routed}"
FILED_URGENT = "已提交紧急报修 {code}：{place} · {category} · {description}。{told}"
FILED_HAZARD = "已登记安全隐患 {code}：{place} · {description}。{routed}"
ASK_PHOTO = "如有照片请现在发送（10分钟内有效），没有请发送「跳过」。"
PHOTO_LATER = "如有照片，10分钟内直接发送即可附在 {code} 上。"
PHOTO_ATTACHED = "照片已附在 {code} 上（第{n}张）。"
COMPLETION_PHOTO_ATTACHED = "完成照片已附在 {code} 上（第{n}张）。"
TOO_MANY_PHOTOS = "{code} 的照片已达{n}张，不再添加。"
SKIPPED = "好的，{code} 已提交，处理进展会通知你。"
CANCELLED_AFTER_FILING = "{code} 已经提交，不再等待照片。如不需要维修了，请发送「撤销 {code} 理由」。"
DUPLICATE = ("这个问题已有报修 {code}（{status}）：{place} · {description}。你的描述「{said}」已补充到 {code}，"
             "{told}你已关注 {code}，处理进展会通知你。")
DUPLICATE_MINE = "你已报修过 {code}（{status}）：{place} · {description}。这次的描述「{said}」已补充到 {code}，{told}"
DUPLICATE_URGENT = "这次的描述有紧急情况，{code} 已按紧急处理。"
USAGE_PATROL = "请按格式发送：巡查 地点 问题，例如：巡查 二楼东楼梯 扶手松动"
USAGE_ACCEPT = "请按格式发送：接单 R编号，例如：接单 R12"
USAGE_FINISH = "请按格式发送：完成 R编号 [备注]，例如：完成 R12 已更换灯管"
USAGE_TRANSFER = "请按格式发送：转派 R编号 姓名，例如：转派 R12 殷奇"
USAGE_REOPEN = "请按格式发送：未修好 R编号 [情况]，例如：未修好 R12 灯还是不亮"
USAGE_WITHDRAW = "请按格式发送：撤销 R编号 [理由]，例如：撤销 R12 已经自己修好了"
NOT_REPORTER = "{code} 不是你提交的报修。只有报修人（接单前）或管理员可以撤销。"
WITHDRAW_TOO_LATE = "{code} 已由{name}接单，不能再撤销。如已不需要维修，请联系{name}或管理员。"
WITHDRAW_AFTER_DONE = "{code} {status}，不能再撤销。"
WITHDRAWN_REPLY = "已撤销 {code}：{place} · {description}{reason}。{told}"
WITHDRAWN_NO_REOPEN = "{code} 已撤销，不能重新打开。如问题仍在，请重新发送「报修 地点 描述」。"
UNKNOWN_TICKET = "没有找到报修单 {code}，请核对编号（发送「我的报修」查看你的报修）。"
NOT_YOURS = "{code} 不是你提交或关注的报修，无法查看或操作。"
ACCEPTED_REPLY = "已接单 {code}：{place} · {description}（报修人：{reporter}）。修好后请发送「完成 {code} [备注]」。"
ALREADY_MINE = "你已接单 {code}，修好后请发送「完成 {code} [备注]」。"
TAKEN = "{code} 已由{name}接单。如需转交，请发送「转派 {code} 姓名」。"
ALREADY_DONE = "{code} {status}，无需再操作。"
NOT_ASSIGNED_TO_YOU = "{code} 由{name}负责，请由其完成，或先发送「转派 {code} 姓名」。"
FINISHED = "已完成 {code}：{place} · {description}。报修人：{told}如有完成照片，10分钟内直接发送即可。"
NO_SUCH_WORKER = "没有找到名为「{name}」的后勤或管理员，无法转派 {code}。"
SAME_WORKER = "{code} 已由{name}负责，无需转派。"
TRANSFERRED = "已将 {code} 转派给{name}。"
STILL_OPEN = "{code} 还在处理中（{status}），无需重新打开。"
REOPENED = "已重新打开 {code}，等待再次维修：{told}"
RATED = "谢谢评价！{code} 评分 {rating} 分。"
RATE_RANGE = "请回复 1-5 为 {code} 的维修打分（5 分最满意）。"
THANKED = "不客气，很高兴 {code} 已修好！方便的话请回复 1-5 为这次维修打分（5 分最满意）。"
ASK_CONFIRM = "要报修吗？{place} · {description}（回复「是」提交）"
ASK_CONFIRM_PLACE = "要报修吗？请告诉我地点（如：三(2)班），问题：{description}。发送「取消」可结束。"
NOT_FILED = "好的，没有提交报修。"
YES_WORDS = {"是", "是的", "对", "对的", "好", "好的", "嗯", "要", "提交", "确定", "可以", "ok", "yes"}
NO_WORDS = {"不", "不是", "否", "不要", "不用", "no"}
THANKS_WORDS = ("谢谢", "感谢", "多谢", "辛苦", "很好", "不错", "满意", "修好了", "好了")
NO_OPEN = "你目前没有未完成的报修。发送「报修」可提交新的报修。"
NO_WORK = "目前没有待你处理的工单。"
MY_HEADER = "你的报修："
MY_WORK_HEADER = "待你处理："
MY_LATE_HEADER = "已逾期："
MORE = "……另有{n}条"

NOTIFY_NEW = "【新报修】{code} {place} · {category}：{description}（报修人：{reporter}）。接单请发送「接单 {code}」。"
NOTIFY_URGENT = "【紧急报修】{code} {place} · {category}：{description}（报修人：{reporter}）。请立即处理，接单请发送「接单 {code}」。"
NOTIFY_HAZARD = "【安全隐患】{code} {place}：{description}（巡查人：{reporter}）。接单请发送「接单 {code}」。"
NOTIFY_FOLLOW_UP = "【报修补充】{code} {place} · {description}：{reporter}也报告了「{said}」。"
NOTIFY_FOLLOW_UP_URGENT = "【紧急报修】{code} {place} · {description}：{reporter}补充报告「{said}」，请立即处理。"
NOTIFY_ACCEPT_HINT = "接单请发送「接单 {code}」。"
NOTIFY_ACCEPTED = "【报修进度】{code} {place} · {description}：{name}已接单，正在处理。"
NOTIFY_DONE = "【报修完成】{code} {place} · {description}：{name}已修好{note}。"
NOTIFY_RATE = "请直接回复 1-5 为这次维修打分；如仍未修好，请发送「未修好 {code}」。"
NOTIFY_NOT_FIXED = "如仍未修好，请发送「未修好 {code}」。"
NOTIFY_TRANSFER = "【转派报修】{code} {place} · {category}：{description}（报修人：{reporter}），由{by}转派给你。接单请发送「接单 {code}」。"
NOTIFY_TRANSFERRED = "【报修进度】{code} {place} · {description}：已转交{name}处理。"
NOTIFY_REOPENED = "【报修返修】{code} {place} · {description}：{reporter}反映仍未修好{reason}（第{n}次返修），请再次处理。"
NOTIFY_RATED = "【报修评价】{code} {place} · {description}：{reporter}评分 {rating} 分。"
NOTIFY_WITHDRAWN = "【报修撤销】{code} {place} · {description}：{by}已撤销{reason}，无需再处理。"
REASON = "（理由：{reason}）"

# gives_way: mid-dialog, 我的报修, 菜单 ... are answered, not taken for the place or the description
# A sentence with no command word is taken for a repair when it names a registered place and one of
# these (三年级二班的投影仪坏了): the bot asks before filing. The skip words answer the photo question
# that the one-shot 报修 leaves open.
FAULT_WORDS = ("坏", "不亮", "不响", "漏水", "渗水", "滴水", "跑水", "关不上", "关不了", "打不开", "开不了", "锁不上",
               "不能用", "用不了", "没反应", "不工作", "不转", "不出水", "没水", "没电", "停电", "跳闸", "堵", "掉了",
               "脱落", "松动", "裂", "破了", "碎了", "黑屏", "花屏", "故障", "异响", "冒烟", "漏电", "不制冷",
               "不制热", "没声音", "失灵", "卡住", "断了", "要修", "维修", "修一下", "不通", "不灵")

# gives_way: mid-dialog, 我的报修, 菜单 ... are answered, not taken for the place or the description
repair = Conversation("repair", title="报修", keywords=["报修"], menu_keys=["REPAIR"], scenes=["room", "asset"],
                      roles=REPAIR_ROLES, help=HELP_REPAIR, gives_way=True, cancel_words=CANCEL_WORDS,
                      topic="报修", rank=1, cues=(*FAULT_WORDS, *SKIP_WORDS), photo_hint=PHOTO_FIRST)
# what repair staff and admins call the tickets waiting for them: to them the work comes first; a
# teacher who says it means her own reports
WORK_ORDER_WORDS = ("我的工单", "工单列表", "工单")
my_repairs = Conversation("my_repairs", title="我的报修", keywords=["我的报修", *WORK_ORDER_WORDS],
                          menu_keys=["MY_REPAIRS"], roles=REPAIR_ROLES, help=HELP_MY, topic="报修", rank=2)
accept = Conversation("repair_accept", title="接单", keywords=["接单"], roles=WORK_ROLES, help=HELP_ACCEPT,
                      topic="报修", rank=2)
finish = Conversation("repair_finish", title="完成报修", keywords=["完成"], roles=WORK_ROLES, help=HELP_FINISH,
                      topic="报修", rank=3)
transfer = Conversation("repair_transfer", title="转派", keywords=["转派"], roles=WORK_ROLES, help=HELP_TRANSFER,
                        topic="报修")
reopen = Conversation("repair_reopen", title="未修好", keywords=["未修好", "没修好"], roles=REPAIR_ROLES,
                      help=HELP_REOPEN, topic="报修")
patrol = Conversation("patrol", title="巡查", keywords=["巡查"], roles=REPAIR_ROLES, help=HELP_PATROL, topic="报修")
withdraw = Conversation("repair_withdraw", title="撤销报修", keywords=["撤销"], roles=REPAIR_ROLES, help=HELP_WITHDRAW,
                        topic="报修")
ticket_view = Conversation("repair_ticket", title="报修单", roles=REPAIR_ROLES)  # R<n>, and a bare 1-5 rating
# A ticket number in staff's own words for the work on it (R1 修好了, 接R1, 收到 R1 马上过去): which command
# to ask back with, first match wins
WORK_WORDS = (("完成", finish, ("修好", "已修", "完成", "搞定", "弄好", "换好")),
              ("接单", accept, ("接", "处理", "马上", "过去", "收到")))



def file_ticket(ctx: Context, place: Place, description: str, *, hazard: bool = False,
                ask_photo: bool = False) -> Reply:
    """File a ticket (or follow the open one for the same room and category) and tell who must act."""
    person = ctx.person
    assert person is not None  # the conversations are for bound roles only
    description = description.strip()[:MAX_DESCRIPTION]
    if hazard:
        category = HAZARD_CATEGORY
    elif place.asset is not None:
        category = place.asset.category
    else:
        category = categorize(ctx.db, description)
    urgent = is_urgent(ctx.db, description)
    existing = find_duplicate(ctx.db, place, description)
    if existing is not None:
        return _duplicate(ctx, existing, person, description, urgent, ask_photo)
    ticket = RepairTicket(number=next_number(ctx.db), reporter=person, room=place.room, asset=place.asset,
                          place=place.text[:MAX_PLACE], category=category, description=description, urgent=urgent,
                          hazard=hazard, status=OPEN, filed_at=ctx.now)
    ctx.db.add(ticket)
    ctx.db.flush()
    fields = ticket_fields(ticket)
    staff = responsible(ctx.db, category)
    if urgent:
        notice = ctx.outbox.notify([*staff, *admins(ctx.db)], "repair_urgent", NOTIFY_URGENT.format(**fields),
                                   safety=True, about=ticket, fields=ticket_push(ticket))
        text = FILED_URGENT.format(**fields, told=told(notice))
    else:
        template = NOTIFY_HAZARD if hazard else NOTIFY_NEW
        notice = ctx.outbox.notify(staff, "repair_new", template.format(**fields), safety=hazard, escalate=True,
                                   about=ticket, fields=ticket_push(ticket))
        text = (FILED_HAZARD if hazard else FILED).format(**fields, routed=told(notice))
    if ask_photo:
        return Reply(f"{text}\n{ASK_PHOTO}", next=Step.PHOTO, data={"ticket": ticket.number})
    return Reply.end(f"{text}\n{PHOTO_LATER.format(code=ticket.code)}")



def _duplicate(ctx: Context, ticket: RepairTicket, person: Person, description: str, urgent: bool,
               ask_photo: bool) -> Reply:
    """Another report of the ticket's fault: kept in its history in the reporter's words, who then
    follows the ticket; whoever works on it is told (urgent words: at once, with admin, as safety)."""
    # added by its ticket, not appended to ticket.events: that would load the whole history first
    ctx.db.add(TicketEvent(ticket=ticket, kind=FOLLOW_UP, person=person, text=description, urgent=urgent,
                           created_at=ctx.now))
    follow(ctx.db, ticket, person)
    fields = {**ticket_fields(ticket), "said": description}
    workers = workers_of(ctx.db, ticket)
    words = {**fields, "reporter": person.name}
    if urgent:
        ticket.urgent = True
        notice = ctx.outbox.notify([*workers, *admins(ctx.db)], "repair_urgent",
                                   NOTIFY_FOLLOW_UP_URGENT.format(**words), safety=True,
                                   about=ticket, fields=ticket_push(ticket))
    else:
        hint = NOTIFY_ACCEPT_HINT.format(**fields) if ticket.assignee is None else ""
        notice = ctx.outbox.notify(workers, "repair_follow_up", NOTIFY_FOLLOW_UP.format(**words) + hint,
                                   escalate=True, about=ticket, fields=ticket_push(ticket))
    template = DUPLICATE_MINE if ticket.reporter_id == person.id else DUPLICATE
    text = template.format(**fields, told=told(notice)) + (DUPLICATE_URGENT.format(**fields) if urgent else "")
    if ask_photo:
        return Reply(f"{text}\n{ASK_PHOTO}", next=Step.PHOTO, data={"ticket": ticket.number})
    return Reply.end(f"{text}\n{PHOTO_LATER.format(code=ticket.code)}")



# -- 报修 ----------------------------------------------------------------------------------------
@repair.entry
def start(msg: Incoming, ctx: Context) -> Reply:
    if msg.scene:
        return _from_scene(msg.scene, ctx)
    if not msg.args:
        return Reply(ASK_PLACE, next=Step.PLACE)
    return _place_given(ctx, msg.kept_args)


def _from_scene(scene: str, ctx: Context) -> Reply:
    kind, _, ident = scene.partition(":")
    place: Place | None = None
    if ident.isdigit():
        if kind == "room" and (room := ctx.db.get(Room, int(ident))) is not None:
            if (counted := stocktake_scan(ctx, room=room)) is not None:  # a stocktake: where the checker is
                return counted
            place = Place(room.name, room)
        elif kind == "asset" and (asset := ctx.db.get(Asset, int(ident))) is not None:
            if (counted := stocktake_scan(ctx, asset=asset)) is not None:  # a stocktake: counted
                return counted
            place = asset_place(asset)
            if offers_loan(ctx, asset):  # 借用 / 归还 beside 报修 (handlers/assets/loans.py)
                return Reply(SCAN_CHOICE.format(place=place.text), next=Step.DETAIL,
                             data={**place.data, "asset_choice": asset.id})
    if place is None:
        return Reply(f"{QR_UNKNOWN}{ASK_PLACE}", next=Step.PLACE)
    return Reply(ASK_DETAIL.format(place=place.text), next=Step.DETAIL, data=place.data)


def _place_given(ctx: Context, words: list[str]) -> Reply:
    """`地点 描述` files at once; `地点` alone asks for the description; "三(2)班投影仪不亮" is split."""
    place = resolve_place(ctx.db, words[0])
    if len(words) > 1:
        return file_ticket(ctx, place, strip_particles(" ".join(words[1:])))
    if place.room is None and place.asset is None and (glued := split_place(ctx.db, words[0])) and glued[1]:
        return file_ticket(ctx, Place(glued[0].name, glued[0]), strip_particles(glued[1]))
    if ctx.data.get("description"):  # the place a sentence's repair lacked: a registered one files it
        description = str(ctx.data["description"])
        if place.room is not None or place.asset is not None:
            return file_ticket(ctx, place, description)
        if normalize(words[0]).lower() in NO_WORDS:
            return Reply.end(NOT_FILED)
        return Reply(ASK_CONFIRM.format(place=place.text, description=description), next=Step.CONFIRM,
                     data={**place.data, "description": description})
    return Reply(ASK_DETAIL.format(place=place.text), next=Step.DETAIL, data=place.data)


@repair.on(Step.PLACE)
def got_place(msg: Incoming, ctx: Context) -> Reply:
    words = msg.kept_text.split(" ") if msg.text else []
    if not words:
        return Reply(ASK_PLACE_TEXT, next=Step.PLACE)
    return _place_given(ctx, words)


@repair.on(Step.DETAIL)
def got_detail(msg: Incoming, ctx: Context) -> Reply:
    if not msg.text:
        return Reply(ASK_DETAIL_TEXT, next=Step.DETAIL)
    if ctx.data.get("asset_choice") and (chosen := scan_choice(msg, ctx)) is not None:
        return chosen
    return file_ticket(ctx, place_from_data(ctx.db, ctx.data), msg.kept_text, ask_photo=True)


@repair.on(Step.PHOTO)
def got_photo(msg: Incoming, ctx: Context) -> Reply | None:
    ticket = ctx.db.scalar(select(RepairTicket).where(RepairTicket.number == ctx.data.get("ticket")))
    if ticket is None:
        return None
    if msg.msg_type == "image" and msg.media_id:
        return Reply.end(attach_photo(ctx, ticket, msg.media_id, REPORT))
    if msg.text.lower() in SKIP_WORDS:
        return Reply.end(SKIPPED.format(code=ticket.code))
    return None  # anything else is a new message: the engine routes it


@repair.on_event("text", "voice")
def repair_sentence(msg: Incoming, ctx: Context) -> Reply | None:
    """A sentence with no command word: 跳过 answering the photo question a one-shot 报修 left; or a
    registered place and a fault word (三年级二班的投影仪坏了), asked before filing."""
    text = msg.text
    if text.lower() in SKIP_WORDS:
        ticket = ctx.db.scalar(select(RepairTicket).where(
            RepairTicket.reporter_id == ctx.person_id, RepairTicket.filed_at >= ctx.now - PHOTO_WINDOW,
            RepairTicket.status != WITHDRAWN).order_by(RepairTicket.filed_at.desc()).limit(1))
        return Reply.end(SKIPPED.format(code=ticket.code)) if ticket is not None else None
    if not any(w in text for w in FAULT_WORDS):
        return None
    found = find_place_in(ctx.db, text)
    if found is None:
        description = original_tail(msg.kept_text, text)
        return Reply(ASK_CONFIRM_PLACE.format(description=description), next=Step.PLACE,
                     data={"description": description})
    room, before, after = found
    said = after.lstrip(SEPARATOR_MARKS + LEADING_PARTICLES).strip()  # 三年级二班的投影仪坏了: 投影仪坏了
    description = original_tail(msg.kept_text, said) if said else before.rstrip(SEPARATOR_MARKS + "的在").strip()
    if not description:
        return None
    place = Place(room.name, room)
    return Reply(ASK_CONFIRM.format(place=place.text, description=description), next=Step.CONFIRM,
                 data={**place.data, "description": description})


@repair.on(Step.CONFIRM)
def confirmed(msg: Incoming, ctx: Context) -> Reply | None:
    answer = msg.text.lower().rstrip("。.!")
    if answer in YES_WORDS:
        return file_ticket(ctx, place_from_data(ctx.db, ctx.data), str(ctx.data["description"]))
    if answer in NO_WORDS:
        return Reply.end(NOT_FILED)
    return None  # something else: routed as a new message


@repair.on_cancel(Step.PHOTO)
def cancelled_after_filing(msg: Incoming, ctx: Context) -> Reply:
    """取消 at the photo step: the ticket stands; say so, and how to withdraw it."""
    return Reply.end(CANCELLED_AFTER_FILING.format(code=f"R{ctx.data.get('ticket')}"))


@repair.on_event("image")
def image_after_filing(msg: Incoming, ctx: Context) -> Reply | None:
    """An image within 10 minutes of filing or of reporting the same fault again (or of 完成, from the one
    who finished) joins that ticket."""
    person = ctx.person
    if person is None or not msg.media_id:
        return None
    since = ctx.now - PHOTO_WINDOW
    filed = ctx.db.scalar(select(RepairTicket).where(RepairTicket.reporter_id == person.id,
                                                     RepairTicket.filed_at >= since, RepairTicket.status != WITHDRAWN)
                          .order_by(RepairTicket.filed_at.desc()).limit(1))
    added = ctx.db.scalar(select(TicketEvent).where(TicketEvent.person_id == person.id, TicketEvent.kind == FOLLOW_UP,
                                                    TicketEvent.created_at >= since)
                          .order_by(TicketEvent.created_at.desc(), TicketEvent.id.desc()).limit(1))
    done = ctx.db.scalar(select(RepairTicket).where(RepairTicket.assignee_id == person.id,
                                                    RepairTicket.status.in_((DONE, CLOSED)),
                                                    RepairTicket.done_at >= since)
                         .order_by(RepairTicket.done_at.desc()).limit(1))
    candidates = [(t.filed_at, t, REPORT) for t in [filed] if t is not None]
    candidates += [(e.created_at, e.ticket, REPORT) for e in [added] if e is not None and e.ticket.status in ACTIVE]
    candidates += [(t.done_at, t, COMPLETION) for t in [done] if t is not None and t.done_at is not None]
    if not candidates:
        return None
    _, ticket, kind = max(candidates, key=lambda c: c[0])
    return Reply.end(attach_photo(ctx, ticket, msg.media_id, kind))


def attach_photo(ctx: Context, ticket: RepairTicket, media_id: str, kind: str) -> str:
    """Record the photo; the media worker downloads it at once."""
    same_kind = [p for p in ticket.photos if p.kind == kind]
    if len(same_kind) >= MAX_PHOTOS:
        return TOO_MANY_PHOTOS.format(code=ticket.code, n=MAX_PHOTOS)
    sender = ctx.person.id if ctx.person else None
    ticket.photos.append(TicketPhoto(media_id=media_id[:200], kind=kind, sender_id=sender, next_attempt_at=ctx.now,
                                     created_at=ctx.now))
    template = COMPLETION_PHOTO_ATTACHED if kind == COMPLETION else PHOTO_ATTACHED
    return template.format(code=ticket.code, n=len(same_kind) + 1)


# -- 巡查 ----------------------------------------------------------------------------------------
@patrol.entry
def record_hazard(msg: Incoming, ctx: Context) -> Reply:
    if len(msg.args) < 2:
        return Reply.end(USAGE_PATROL)
    return file_ticket(ctx, resolve_place(ctx.db, msg.kept_args[0]), " ".join(msg.kept_args[1:]), hazard=True)


# -- 接单 / 完成 / 转派 -----------------------------------------------------------------------------
def _named_ticket(msg: Incoming, ctx: Context, usage: str, min_args: int = 1
                  ) -> tuple[RepairTicket | None, str]:
    """The ticket a command names first (locked), or the answer: its usage, or that no such ticket exists."""
    if len(msg.args) < min_args:
        return None, usage
    ticket = ticket_by_code(ctx.db, msg.args[0], lock=True)
    if ticket is None:
        return None, (UNKNOWN_TICKET.format(code=shown_code(msg.args[0])) if re.fullmatch(r"[Rr]?\d+", msg.args[0])
                      else usage)
    return ticket, ""


def _ticket_or_answer(msg: Incoming, ctx: Context, usage: str, min_args: int = 1
                      ) -> tuple[RepairTicket | None, str]:
    """The named ticket while it is still being worked on, or the answer."""
    ticket, answer = _named_ticket(msg, ctx, usage, min_args)
    if ticket is None:
        return None, answer
    if ticket.status not in ACTIVE:
        return None, ALREADY_DONE.format(**ticket_fields(ticket))
    return ticket, ""


@accept.entry
def accept_ticket(msg: Incoming, ctx: Context) -> Reply:
    ticket, answer = _ticket_or_answer(msg, ctx, USAGE_ACCEPT)
    if ticket is None:
        return Reply.end(answer)
    me = ctx.person
    assert me is not None
    fields = ticket_fields(ticket)
    if ticket.status == ACCEPTED:
        return Reply.end((ALREADY_MINE if ticket.assignee_id == me.id else TAKEN).format(**fields))
    ticket.status, ticket.assignee, ticket.accepted_at = ACCEPTED, me, ctx.now
    ctx.outbox.notify(parties(ticket), "repair_progress", NOTIFY_ACCEPTED.format(**{**fields, "name": me.name}),
                      about=ticket, fields=ticket_push(ticket))
    reporter = ticket.reporter
    who = f"{reporter.name} {reporter.phone}".strip() if reporter else fields["reporter"]
    return Reply.end(ACCEPTED_REPLY.format(**{**fields, "reporter": who}))


@finish.entry
def finish_ticket(msg: Incoming, ctx: Context) -> Reply:
    ticket, answer = _ticket_or_answer(msg, ctx, USAGE_FINISH)
    if ticket is None:
        return Reply.end(answer)
    me = ctx.person
    assert me is not None
    if ticket.assignee is not None and ticket.assignee_id != me.id and "admin" not in ctx.roles:
        return Reply.end(NOT_ASSIGNED_TO_YOU.format(**ticket_fields(ticket)))
    note = " ".join(msg.kept_args[1:])[:MAX_DESCRIPTION]
    ticket.assignee = ticket.assignee or me
    ticket.accepted_at = ticket.accepted_at or ctx.now
    ticket.status, ticket.done_at, ticket.note = DONE, ctx.now, note
    fields = {**ticket_fields(ticket), "note": f"（备注：{note}）" if note else ""}
    done = NOTIFY_DONE.format(**fields)
    notice = ctx.outbox.notify(ticket.reporter, "repair_done", f"{done}\n{NOTIFY_RATE.format(**fields)}",
                               escalate=True, about=ticket, fields=ticket_push(ticket))
    ctx.outbox.notify(ticket.follower_people, "repair_done", f"{done}\n{NOTIFY_NOT_FIXED.format(**fields)}",
                      about=ticket, fields=ticket_push(ticket))
    return Reply.end(FINISHED.format(**fields, told=told(notice)))


@transfer.entry
def transfer_ticket(msg: Incoming, ctx: Context) -> Reply:
    ticket, answer = _ticket_or_answer(msg, ctx, USAGE_TRANSFER, min_args=2)
    if ticket is None:
        return Reply.end(answer)
    me = ctx.person
    assert me is not None
    name = " ".join(msg.args[1:])
    try:
        target = resolve_person(ctx.db, name, WORK_ROLES)
    except AmbiguousName as ambiguous:
        return Reply.end(ambiguous.message)
    except PersonNotFound:
        return Reply.end(NO_SUCH_WORKER.format(name=name, code=ticket.code))
    fields = ticket_fields(ticket)
    if ticket.assignee_id == target.id:
        return Reply.end(SAME_WORKER.format(**fields))
    ticket.status, ticket.assignee, ticket.accepted_at = OPEN, target, None
    ctx.outbox.notify(target, "repair_new", NOTIFY_TRANSFER.format(**fields, by=me.name), safety=ticket.urgent,
                      about=ticket, fields=ticket_push(ticket))
    ctx.outbox.notify(parties(ticket), "repair_progress", NOTIFY_TRANSFERRED.format(**{**fields, "name": target.name}),
                      about=ticket, fields=ticket_push(ticket))
    return Reply.end(TRANSFERRED.format(code=ticket.code, name=target.name))


# -- 撤销 ----------------------------------------------------------------------------------------
@withdraw.entry
def withdraw_ticket(msg: Incoming, ctx: Context) -> Reply:
    """The reporter before it is accepted, or admin at any time: the ticket leaves the open lists and
    stays in the ledger as 已撤销 with the reason; whoever works on it, and its followers, are told."""
    ticket, answer = _named_ticket(msg, ctx, USAGE_WITHDRAW)
    if ticket is None:
        return Reply.end(answer)
    me = ctx.person
    assert me is not None
    fields = ticket_fields(ticket)
    if ticket.status == WITHDRAWN:
        return Reply.end(ALREADY_DONE.format(**fields))
    if "admin" not in ctx.roles:
        if ticket.reporter_id != me.id:
            return Reply.end(NOT_REPORTER.format(**fields))
        if ticket.status == ACCEPTED:
            return Reply.end(WITHDRAW_TOO_LATE.format(**fields))
        if ticket.status != OPEN:
            return Reply.end(WITHDRAW_AFTER_DONE.format(**fields))
    said = " ".join(msg.kept_args[1:])[:MAX_DESCRIPTION]
    reason = REASON.format(reason=said) if said else ""
    workers = workers_of(ctx.db, ticket)
    ticket.status = WITHDRAWN
    ticket.events.append(TicketEvent(kind=WITHDRAWAL, person=me, text=said, created_at=ctx.now))
    news = NOTIFY_WITHDRAWN.format(**fields, by=me.name, reason=reason)
    notice = ctx.outbox.notify(workers, "repair_withdrawn", news, safety=ticket.urgent,
                               about=ticket, fields=ticket_push(ticket))
    others = ctx.outbox.notify([p for p in parties(ticket) if p.id != me.id], "repair_progress", news,
                               about=ticket, fields=ticket_push(ticket))
    return Reply.end(WITHDRAWN_REPLY.format(**fields, reason=reason, told=told(notice, others)))


# -- 未修好, rating, R<n>, 我的报修 ---------------------------------------------------------------------
@reopen.entry
def reopen_ticket(msg: Incoming, ctx: Context) -> Reply:
    ticket, answer = _named_ticket(msg, ctx, USAGE_REOPEN)
    if ticket is None:
        return Reply.end(answer)
    me = ctx.person
    assert me is not None
    fields = ticket_fields(ticket)
    if not is_party(ticket, me) and "admin" not in ctx.roles:
        return Reply.end(NOT_YOURS.format(**fields))
    if ticket.status in ACTIVE:
        return Reply.end(STILL_OPEN.format(**fields))
    if ticket.status == WITHDRAWN:
        return Reply.end(WITHDRAWN_NO_REOPEN.format(**fields))
    ticket.status = ACCEPTED if ticket.assignee else OPEN
    ticket.done_at = ticket.closed_at = ticket.rating = None
    ticket.reopen_count += 1
    reason = " ".join(msg.kept_args[1:])
    workers = workers_of(ctx.db, ticket)
    notice = ctx.outbox.notify(workers, "repair_reopened", NOTIFY_REOPENED.format(
        **{**fields, "reporter": me.name}, reason=f"：{reason}" if reason else "", n=ticket.reopen_count),
        safety=ticket.urgent, escalate=True, about=ticket, fields=ticket_push(ticket))
    return Reply.end(REOPENED.format(code=ticket.code, told=told(notice)))


def about_a_ticket(ctx: Context, text: str) -> str | None:
    """`R<n>`: the ticket; a ticket number in staff's own words for the work on it (接R1, R1 修好了): the
    command asked back, nothing recorded. Else None."""
    if CODE_RE.fullmatch(text):
        return show_ticket(ctx, text)
    codes = CODE_RE.findall(text)
    if len(codes) == 1 and ctx.has_role(*WORK_ROLES):
        for command, cap, words in WORK_WORDS:
            if any(w in text for w in words):
                return DID_YOU_MEAN.format(word=f"{command} R{codes[0]}", hint=cap.hint)
    return None


@ticket_view.on_event("text", "voice")
def show_or_rate(msg: Incoming, ctx: Context) -> Reply | None:
    """`R<n>` shows a ticket; a bare 1-5 rates the sender's latest finished report. Anything else passes."""
    text = msg.text.strip()
    about = about_a_ticket(ctx, text)
    if about is not None:
        return Reply.end(about)
    rating = bare_score(text)
    out_of_range = OUT_OF_RANGE_RE.fullmatch(text) is not None
    thanks = len(text) <= 20 and any(w in text for w in THANKS_WORDS)
    if (rating is not None or out_of_range or thanks) and ctx.person is not None:
        ticket = ctx.db.scalar(select(RepairTicket).where(
            RepairTicket.reporter_id == ctx.person.id, RepairTicket.status == DONE, RepairTicket.rating.is_(None))
            .order_by(RepairTicket.done_at.desc()).limit(1))
        if ticket is not None:
            if rating is not None:
                return Reply.end(rate(ctx, ticket, rating))
            return Reply.end((RATE_RANGE if out_of_range else THANKED).format(code=ticket.code))
    return None


def rate(ctx: Context, ticket: RepairTicket, rating: int) -> str:
    ticket.rating, ticket.status, ticket.closed_at = rating, CLOSED, ctx.now
    fields = ticket_fields(ticket)
    ctx.outbox.notify(ticket.assignee, "repair_rated", NOTIFY_RATED.format(**fields, rating=rating),
                      about=ticket, fields=ticket_push(ticket))
    return RATED.format(code=ticket.code, rating=rating)


def show_ticket(ctx: Context, word: str) -> str:
    ticket = ticket_by_code(ctx.db, word)
    if ticket is None:
        return UNKNOWN_TICKET.format(code=shown_code(word))
    me = ctx.person
    if me is None or not (is_party(ticket, me) or ctx.has_role("staff", "admin")):
        return NOT_YOURS.format(code=ticket.code)
    return describe(ticket, ctx.settings.tz)


def describe(ticket: RepairTicket, tz: tzinfo) -> str:
    """The whole ticket, as its reporter, staff and admin see it."""
    flags = ("【紧急】" if ticket.urgent else "") + ("【安全隐患】" if ticket.hazard else "")
    fields = ticket_fields(ticket)
    lines = [f"报修单 {ticket.code}{flags}", f"地点：{ticket.place}"]
    if ticket.room is not None:
        about = [ticket.room.where, f"房间负责人：{ticket.room.responsible.name}" if ticket.room.responsible else ""]
        if any(about):
            lines[-1] += f"（{'，'.join(a for a in about if a)}）"
    if ticket.asset is not None:
        lines.append(f"设备：{ticket.asset.name}（{ticket.asset.code}）")
    lines += [f"类别：{ticket.category}", f"问题：{ticket.description}",
              f"报修：{fields['reporter']} {local_label(tz, ticket.filed_at)}"]
    status = fields["status"]
    if ticket.assignee is not None:
        status += f"，负责人：{ticket.assignee.name}"
    if ticket.accepted_at is not None and ticket.status != OPEN:
        status += f"（{local_label(tz, ticket.accepted_at)} 接单）"
    lines.append(f"状态：{status}")
    if ticket.done_at is not None:
        lines.append(f"完成：{local_label(tz, ticket.done_at)}" + (f"，备注：{ticket.note}" if ticket.note else ""))
    if ticket.rating is not None:
        lines.append(f"评价：{ticket.rating} 分")
    if ticket.reopen_count:
        lines.append(f"返修：{ticket.reopen_count} 次")
    if ticket.photos:
        report = sum(1 for p in ticket.photos if p.kind == REPORT)
        done = len(ticket.photos) - report
        saved = sum(1 for p in ticket.photos if p.path)
        lines.append(f"照片：报修 {report} 张，完成 {done} 张（已保存 {saved} 张）")
    lines += [f"补充：{line}" for line in follow_up_lines(ticket, tz)]
    if (withdrawal := ticket.withdrawal) is not None:
        lines.append(f"撤销：{withdrawal_line(withdrawal, tz)}")
    if ticket.followers:
        lines.append(f"关注：{names_of(ticket.follower_people)}")
    return "\n".join(lines)



MY_LIMIT = 10


def _brief(ticket: RepairTicket) -> str:
    who = f"，{ticket.assignee.name}" if ticket.assignee else ""
    flag = "【紧急】" if ticket.urgent else ""
    return f"{ticket.code}{flag} {ticket.place} · {ticket.description[:20]} — {STATUS_NAMES[ticket.status]}{who}"


def _listing(header: str, tickets: list[RepairTicket]) -> list[str]:
    if not tickets:
        return []
    lines = [header, *(_brief(t) for t in tickets[:MY_LIMIT])]
    if len(tickets) > MY_LIMIT:
        lines.append(MORE.format(n=len(tickets) - MY_LIMIT))
    return lines


@my_repairs.entry
def list_mine(msg: Incoming, ctx: Context) -> Reply:
    """The sender's open reports, and to staff and admin the work waiting for them — first when they
    asked for their 工单. A ticket number after the word is about that ticket (`工单 R3`, `工单R3修好了`)."""
    me = ctx.person
    assert me is not None
    word, _, rest = msg.text.partition(" ")
    about = about_a_ticket(ctx, rest.strip()) if rest.strip() else None  # 工单R3, 工单 R3 修好了
    if about is not None:
        return Reply.end(about)
    followed = select(TicketFollower.ticket_id).where(TicketFollower.person_id == me.id)
    mine = list(ctx.db.scalars(select(RepairTicket).where(
        or_(RepairTicket.reporter_id == me.id, RepairTicket.id.in_(followed)),
        RepairTicket.status.in_((*ACTIVE, DONE))).order_by(RepairTicket.number)))
    lines = _listing(MY_HEADER, mine)
    if ctx.has_role("staff", "admin"):
        work, late = waiting_for(ctx, me)
        queue = _listing(MY_WORK_HEADER, work) + _listing(MY_LATE_HEADER, late)
        if word in WORK_ORDER_WORDS:
            return Reply.end("\n".join(queue + lines) if queue or lines else NO_WORK)
        lines += queue
    return Reply.end("\n".join(lines) if lines else NO_OPEN)


def waiting_for(ctx: Context, me: Person) -> tuple[list[RepairTicket], list[RepairTicket]]:
    """The work waiting for a staff member or admin: the active tickets they work on (assigned to them, or
    unassigned and theirs by category, admin's when no staff has it), and — split off as 已逾期 — those
    escalated for being late or past their time to be done (to admin: every one; to staff: their own),
    whether or not the escalation job has run yet."""
    workers: dict[str, list[int]] = {}

    def works_on(ticket: RepairTicket) -> bool:
        if ticket.assignee_id is not None:
            return ticket.assignee_id == me.id
        if ticket.category not in workers:
            workers[ticket.category] = [p.id for p in responsible(ctx.db, ticket.category)]
        return me.id in workers[ticket.category]

    active = list(ctx.db.scalars(select(RepairTicket).where(RepairTicket.status.in_(ACTIVE))
                                 .order_by(RepairTicket.number)))
    admin = "admin" in ctx.roles
    work, late = [], []
    for ticket in active:
        escalated = (ticket.unaccepted_escalated_at is not None or ticket.overdue_escalated_at is not None
                     or is_overdue(ctx.db, ticket, ctx.now))
        mine = works_on(ticket)
        if escalated and (mine or admin):
            late.append(ticket)
        elif mine:
            work.append(ticket)
    return work, late
