"""后勤工作满意度测评 (seeds: "后勤工作满意度测评及后勤工作改进问卷调查" every January): the office's
services (食堂, 保洁, 维修, 校车, 安保, 宿舍, 物品领用 — the school setting `office_survey_items`), each
rated 非常满意 … 非常不满意 with an optional comment, in the chat one item per message or all at once
("5 4 5 3 4 5"), by teachers and staff, and by parents for the services they see
(`office_survey_parent_items`).

Anonymous by construction (models.voice): a rating only bumps a counter (item, group, level); a
comment is a row with a random key and neither person nor time; `office_survey_takers` says who has
taken part and how many items they have answered — what the reminders need — and never what. The
conversation's state holds the survey's id alone (the item asked is the taker's count), and every
answer's message is kept out of the message log (Conversation(private=True)). A group's figure is shown
only from MIN_SHOWN answers. `houqin survey start|remind|results` (bot/cli/voice.py) and the console
call the plain functions below; the reminder is a job (scheduler/survey.py).

Shared with the canteen's survey: the term key (handlers.canteen.term_key), putting the recipients'
WeChat into the survey so a plain reply answers (bot.engine.open_conversation), and the keyword grouping
of comments (handlers.canteen.complaint_words, jieba)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.engine import Context, Conversation, Incoming, Reply, open_conversation
from bot.numbering import dialect_insert
from bot.outbox import Outbox
from bot.school import get_setting, people_with_role
from bot.text import split_list
from handlers.canteen import complaint_words, term_key
from models import OfficeSurvey, OfficeSurveyComment, OfficeSurveyTaker, OfficeSurveyTally, Person
from models.voice import PARENT_GROUP, STAFF_GROUP

LEVELS = {5: "非常满意", 4: "满意", 3: "一般", 2: "不满意", 1: "非常不满意"}
LEVEL_WORDS = {"非常满意": 5, "很满意": 5, "满意": 4, "比较满意": 4, "一般": 3, "基本满意": 3, "不满意": 2,
               "不太满意": 2, "非常不满意": 1, "很不满意": 1}
SATISFIED = (4, 5)
MIN_SHOWN = 5  # fewer answers than this in a group: its figure is not shown (it could point to someone)
DEFAULT_DAYS = 14
REMIND_BEFORE = timedelta(days=2)
MAX_COMMENT = 300
PASS_ON_LENGTH = 8  # a longer text that is no rating, sent while the survey waits, is meant for something else
TAKER_ROLES = ("admin", "staff", "teacher", "bus_monitor", "canteen", "parent")
STAFF_ROLES = ("admin", "staff", "teacher", "bus_monitor", "canteen")
SKIP_WORDS = {"跳过", "不了解", "不清楚", "没用过", "不评价"}
GROUP_NAMES = {STAFF_GROUP: "教职工", PARENT_GROUP: "家长"}
ALL_DIGITS = re.compile(r"[1-5](?:\s*[1-5])+")  # 5 4 5 3 4 5, 545345
ONE = re.compile(r"([1-5])(?![0-9])\s*分?\s*[,，。.:：、!！]?\s*(.*)", re.S)

HELP = "满意度测评 — 填写后勤工作满意度测评（匿名）"
INTRO = ("【后勤工作满意度测评】匿名填写，共{n}项，后勤处只看到汇总。每项回复 1-5："
         "5 非常满意、4 满意、3 一般、2 不满意、1 非常不满意，可附意见（例：4 午餐可以再热一点）；"
         "也可一次回复全部，例如「{example}」。不了解的项目回复「跳过」。")
ASK = "第{index}/{total}项：{item}，请回复 1-5。"
BAD = "没有看懂。请回复 1-5（5 非常满意 … 1 非常不满意），可附意见；不了解请回复「跳过」。"
DONE = "测评已提交，谢谢！你的回答是匿名的，后勤处只看到汇总。"
ALREADY = "你已经完成了本次后勤满意度测评，谢谢！"
NONE_OPEN = "目前没有进行中的后勤满意度测评。"
NOTED_MANY = "已记录{n}项。"
PUSH = INTRO + "\n" + ASK
REMIND = "【提醒】后勤工作满意度测评将于{day}结束，你还有{left}项未填（匿名）。直接回复即可继续：" + ASK
STARTED = "已开始{period}后勤满意度测评（{first}至{last}），已发给 {staff} 位教职工、{parents} 位家长。"
EXISTS = "{period}的后勤满意度测评已于 {at} 开始（{first}至{last}），不能重复开始。"
BAD_ITEMS = "家长评价的项目必须在测评项目之中：{items}"
REMINDED = "已提醒 {n} 位尚未完成的人。"
REMIND_NONE = "所有人都已完成，无需提醒。"
NO_SURVEY = "没有找到{period}的后勤满意度测评。"

survey = Conversation("office_survey", title="后勤满意度测评", keywords=["满意度测评", "测评"],
                      roles=TAKER_ROLES, help=HELP, gives_way=True, topic="意见箱", private=True)


class Step:
    ANSWER = "answer"


# -- who is asked what ---------------------------------------------------------------------------
def group_of(person: Person) -> str:
    roles = person.role_set
    return PARENT_GROUP if roles and roles <= {"parent"} else STAFF_GROUP


def items_for(survey_: OfficeSurvey, person: Person) -> list[str]:
    return survey_.parent_item_list if group_of(person) == PARENT_GROUP else survey_.item_list


def open_survey(db: Session, today: date) -> OfficeSurvey | None:
    return db.scalar(select(OfficeSurvey).where(OfficeSurvey.opens_on <= today, OfficeSurvey.closes_on >= today)
                     .order_by(OfficeSurvey.id.desc()))


def taker(db: Session, survey_: OfficeSurvey, person: Person, create: bool = False) -> OfficeSurveyTaker | None:
    row = db.get(OfficeSurveyTaker, (survey_.id, person.id))
    if row is None and create:
        row = OfficeSurveyTaker(survey_id=survey_.id, person_id=person.id, answered=0)
        db.add(row)
    return row


def example(n: int) -> str:
    return " ".join(str(5 - (i % 3 == 2)) for i in range(n))


# -- answering -----------------------------------------------------------------------------------
def _bump(db: Session, survey_id: int, item: str, group: str, level: int) -> None:
    """One more of `group` gave `item` `level`: an upsert of the counter, nothing else."""
    insert = dialect_insert(db)
    stmt = insert(OfficeSurveyTally).values(survey_id=survey_id, item=item, group=group, level=level, count=1)
    db.execute(stmt.on_conflict_do_update(index_elements=["survey_id", "item", "group", "level"],
                                          set_={"count": OfficeSurveyTally.count + 1}))


def record(db: Session, survey_: OfficeSurvey, person: Person, answers: Sequence[tuple[int | None, str]]) -> int:
    """Record answers to the person's next items, in order ((level or None to skip, comment)); returns how
    many items that took. The taker's row is locked first, so two answers at once never count one item twice."""
    row = taker(db, survey_, person, create=True)
    assert row is not None
    db.flush()
    db.execute(update(OfficeSurveyTaker).where(OfficeSurveyTaker.survey_id == survey_.id,
                                               OfficeSurveyTaker.person_id == person.id)
               .values(answered=OfficeSurveyTaker.answered))  # takes the row's lock
    db.refresh(row)
    items, group = items_for(survey_, person), group_of(person)
    taken = 0
    for level, comment in answers:
        if row.answered >= len(items):
            break
        item = items[row.answered]
        if level is not None:
            _bump(db, survey_.id, item, group, level)
            if comment:
                db.add(OfficeSurveyComment(key=secrets.token_hex(16), survey_id=survey_.id, item=item, group=group,
                                           level=level, text=comment[:MAX_COMMENT]))
        row.answered += 1
        taken += 1
    return taken


def parse_one(text: str, kept: str) -> tuple[int | None, str] | None:
    """"4", "4 午餐可以再热一点", "满意", "非常不满意 太慢了", "跳过" → (level, comment); None if unreadable."""
    if text in SKIP_WORDS:
        return None, ""
    match = ONE.fullmatch(text)
    if match is not None:
        comment = kept[len(kept) - len(match[2]):].strip() if match[2] else ""
        return int(match[1]), comment
    for word in sorted(LEVEL_WORDS, key=len, reverse=True):
        if text.startswith(word):
            return LEVEL_WORDS[word], kept[len(word):].strip(" ，,。：:")
    return None


def next_question(survey_: OfficeSurvey, person: Person, row: OfficeSurveyTaker | None) -> str | None:
    items = items_for(survey_, person)
    done = row.answered if row is not None else 0
    if done >= len(items):
        return None
    return ASK.format(index=done + 1, total=len(items), item=items[done])


def _answer(msg: Incoming, ctx: Context, survey_: OfficeSurvey, text: str, kept: str,
            passing_on: bool = False) -> Reply | None:
    """Record what `text` answers; with `passing_on`, a text that is no answer at all (a sentence meant for
    something else while the survey waits) is passed on (None) instead of asked again."""
    person = ctx.person
    assert person is not None
    data = {"survey": survey_.id}
    if ALL_DIGITS.fullmatch(text):
        taken = record(ctx.db, survey_, person, [(int(d), "") for d in text if d.isdigit()])
        prefix = NOTED_MANY.format(n=taken)
    else:
        parsed = parse_one(text, kept)
        if parsed is None and passing_on:
            return None
        if parsed is None:
            question = next_question(survey_, person, taker(ctx.db, survey_, person))
            return Reply(f"{BAD}\n{question}" if question else BAD, next=Step.ANSWER, data=data)
        record(ctx.db, survey_, person, [parsed])
        prefix = ""
    question = next_question(survey_, person, taker(ctx.db, survey_, person))
    if question is None:
        return Reply.end(prefix + DONE)
    return Reply(prefix + question, next=Step.ANSWER, data=data)


@survey.entry
def start(msg: Incoming, ctx: Context) -> Reply:
    person = ctx.person
    assert person is not None
    survey_ = open_survey(ctx.db, ctx.local_now.date())
    if survey_ is None:
        return Reply.end(NONE_OPEN)
    row = taker(ctx.db, survey_, person)
    question = next_question(survey_, person, row)
    if question is None:
        return Reply.end(ALREADY)
    if msg.args:
        answered = _answer(msg, ctx, survey_, " ".join(msg.args), " ".join(msg.kept_args))
        assert answered is not None
        return answered
    n = len(items_for(survey_, person))
    intro = INTRO.format(n=n, example=example(n)) if row is None or row.answered == 0 else ""
    return Reply(f"{intro}\n{question}".strip(), next=Step.ANSWER, data={"survey": survey_.id})


@survey.on(Step.ANSWER)
def got_answer(msg: Incoming, ctx: Context) -> Reply | None:
    if not msg.text:
        return None
    survey_ = ctx.db.get(OfficeSurvey, int(ctx.data.get("survey", 0)))
    today = ctx.local_now.date()
    if survey_ is None or not survey_.opens_on <= today <= survey_.closes_on:
        return Reply.end(NONE_OPEN)
    return _answer(msg, ctx, survey_, msg.text, msg.kept_text, passing_on=len(msg.text) > PASS_ON_LENGTH)


# -- starting and reminding ------------------------------------------------------------------------
class SurveyError(ValueError):
    """A survey that cannot be started; the message is Chinese."""


def eligible(db: Session, survey_: OfficeSurvey) -> list[Person]:
    staff = people_with_role(db, *STAFF_ROLES)
    parents = [p for p in people_with_role(db, "parent") if group_of(p) == PARENT_GROUP] \
        if survey_.parent_item_list else []
    return staff + parents


def start_survey(db: Session, outbox: Outbox, *, days: int = DEFAULT_DAYS, items: Sequence[str] = (),
                 parent_items: Sequence[str] | None = None, by: str = "") -> tuple[OfficeSurvey, str]:
    """Open this term's survey from today for `days` days, push it to teachers, staff and parents (parents
    only if they have items), and put their WeChat into it. Raises SurveyError."""
    today = outbox.now.astimezone(outbox.settings.tz).date()
    period = term_key(today)
    existing = db.scalar(select(OfficeSurvey).where(OfficeSurvey.period == period))
    if existing is not None:
        raise SurveyError(EXISTS.format(period=period, at=f"{existing.created_at.astimezone(outbox.settings.tz):%m-%d}",
                                        first=existing.opens_on, last=existing.closes_on))
    items = list(items) or split_list(get_setting(db, "office_survey_items"))
    parent_list = (list(parent_items) if parent_items is not None
                   else [i for i in split_list(get_setting(db, "office_survey_parent_items")) if i in items])
    if not set(parent_list) <= set(items):
        raise SurveyError(BAD_ITEMS.format(items="、".join(items)))
    survey_ = OfficeSurvey(period=period, items=";".join(items), parent_items=";".join(parent_list), opens_on=today,
                           closes_on=today + timedelta(days=max(days, 1) - 1), started_by=by, created_at=outbox.now)
    db.add(survey_)
    db.flush()
    people = eligible(db, survey_)
    staff = [p for p in people if group_of(p) == STAFF_GROUP]
    parents = [p for p in people if group_of(p) == PARENT_GROUP]
    for group, members in ((staff, survey_.item_list), (parents, survey_.parent_item_list)):
        if group and members:
            outbox.notify(group, "office_survey", PUSH.format(n=len(members), example=example(len(members)),
                                                              index=1, total=len(members), item=members[0]),
                          fields={"period": period})
            open_conversation(db, group, survey.name, Step.ANSWER, {"survey": survey_.id},
                              datetime.combine(survey_.closes_on + timedelta(days=1), datetime.min.time(),
                                               tzinfo=outbox.settings.tz), outbox.now)
    return survey_, STARTED.format(period=period, first=survey_.opens_on, last=survey_.closes_on, staff=len(staff),
                                   parents=len(parents))


def remind(db: Session, outbox: Outbox, survey_: OfficeSurvey) -> str:
    """Remind, once each, everyone eligible who has not finished (their count only is read)."""
    waiting = []
    for person in eligible(db, survey_):
        row = taker(db, survey_, person)
        items = items_for(survey_, person)
        if row is not None and (row.answered >= len(items) or row.reminded):
            continue
        row = row or taker(db, survey_, person, create=True)
        assert row is not None
        row.reminded = True
        waiting.append((person, items, row.answered))
    survey_.reminded_at = outbox.now
    if not waiting:
        return REMIND_NONE
    day = f"{survey_.closes_on.month}月{survey_.closes_on.day}日"
    expires = datetime.combine(survey_.closes_on + timedelta(days=1), datetime.min.time(), tzinfo=outbox.settings.tz)
    for person, items, done in waiting:
        outbox.notify(person, "office_survey", REMIND.format(day=day, left=len(items) - done, index=done + 1,
                                                              total=len(items), item=items[done]),
                      fields={"period": survey_.period})
        open_conversation(db, [person], survey.name, Step.ANSWER, {"survey": survey_.id}, expires, outbox.now)
    return REMINDED.format(n=len(waiting))


# -- results ------------------------------------------------------------------------------------------
@dataclass
class ItemResult:
    item: str
    counts: dict[str, dict[int, int]]  # group → level → count
    shown: dict[str, bool] = field(default_factory=dict)

    def total(self, group: str | None = None) -> int:
        groups = [group] if group else list(self.counts)
        return sum(sum(self.counts.get(g, {}).values()) for g in groups)

    def share(self, group: str | None = None) -> float | None:
        """The share satisfied (满意 and 非常满意), or None below MIN_SHOWN answers."""
        total = self.total(group)
        if total < MIN_SHOWN:
            return None
        groups = [group] if group else list(self.counts)
        good = sum(self.counts.get(g, {}).get(level, 0) for g in groups for level in SATISFIED)
        return good / total

    def average(self, group: str | None = None) -> float | None:
        total = self.total(group)
        if total < MIN_SHOWN:
            return None
        groups = [group] if group else list(self.counts)
        return sum(level * n for g in groups for level, n in self.counts.get(g, {}).items()) / total

    def level_counts(self) -> dict[int, int] | None:
        if self.total() < MIN_SHOWN:
            return None
        return {level: sum(self.counts.get(g, {}).get(level, 0) for g in self.counts) for level in LEVELS}


@dataclass
class Results:
    survey: OfficeSurvey
    items: list[ItemResult]
    comments: dict[str, list[str]]  # item → comments (unattributed)
    keywords: list[tuple[str, list[str]]]  # a frequent word → the comments holding it
    last_term: dict[str, float | None]
    last_year: dict[str, float | None]
    last_term_period: str
    last_year_period: str
    takers: int


def previous_terms(period: str) -> tuple[str, str]:
    """2026秋 → (2026春, 2025秋); 2027春 → (2026秋, 2026春)."""
    year, season = int(period[:4]), period[4:]
    last_term = f"{year}春" if season == "秋" else f"{year - 1}秋"
    return last_term, f"{year - 1}{season}"


def item_results(db: Session, survey_: OfficeSurvey) -> list[ItemResult]:
    rows = db.scalars(select(OfficeSurveyTally).where(OfficeSurveyTally.survey_id == survey_.id))
    by_item: dict[str, dict[str, dict[int, int]]] = {item: {} for item in survey_.item_list}
    for row in rows:
        by_item.setdefault(row.item, {}).setdefault(row.group, {})[row.level] = row.count
    return [ItemResult(item, counts) for item, counts in by_item.items()]


def results(db: Session, survey_: OfficeSurvey) -> Results:
    items = item_results(db, survey_)
    comments: dict[str, list[str]] = {}
    shown = {r.item for r in items if r.total() >= MIN_SHOWN}
    for c in db.scalars(select(OfficeSurveyComment).where(OfficeSurveyComment.survey_id == survey_.id)
                        .order_by(OfficeSurveyComment.item, OfficeSurveyComment.key)):
        if c.item in shown:  # an item with too few answers keeps its comments back too
            comments.setdefault(c.item, []).append(c.text)
    texts = [t for ts in comments.values() for t in ts]
    keywords = [(word, [t for t in texts if word in t]) for word, _ in complaint_words(texts, 10)]
    last_term_period, last_year_period = previous_terms(survey_.period)

    def shares(period: str) -> dict[str, float | None]:
        earlier = db.scalar(select(OfficeSurvey).where(OfficeSurvey.period == period))
        return {r.item: r.share() for r in item_results(db, earlier)} if earlier is not None else {}

    takers = len(list(db.scalars(select(OfficeSurveyTaker.person_id).where(
        OfficeSurveyTaker.survey_id == survey_.id, OfficeSurveyTaker.answered > 0))))
    return Results(survey_, items, comments, keywords, shares(last_term_period), shares(last_year_period),
                   last_term_period, last_year_period, takers)


def percent(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "—"


RESULT_HEADER = ["项目", "回答数", "满意率", "平均分", "教职工满意率", "家长满意率", *LEVELS.values(),
                 "上学期满意率", "去年同期满意率"]
HIDDEN = f"不足{MIN_SHOWN}份"


def result_rows(res: Results) -> list[list[object]]:
    rows: list[list[object]] = []
    for r in res.items:
        levels = r.level_counts()
        avg = r.average()
        rows.append([r.item, r.total(), percent(r.share()) if r.share() is not None else HIDDEN,
                     round(avg, 2) if avg is not None else HIDDEN,
                     percent(r.share(STAFF_GROUP)) if r.share(STAFF_GROUP) is not None else HIDDEN,
                     percent(r.share(PARENT_GROUP)) if r.share(PARENT_GROUP) is not None else HIDDEN,
                     *([levels[level] for level in LEVELS] if levels else [HIDDEN] * len(LEVELS)),
                     percent(res.last_term.get(r.item)), percent(res.last_year.get(r.item))])
    return rows


def results_text(res: Results) -> str:
    s = res.survey
    lines = [f"{s.period}后勤满意度测评（{s.opens_on}至{s.closes_on}）：{res.takers} 人参与"]
    for row in result_rows(res):
        lines.append(f"{row[0]}：{row[1]} 份，满意率 {row[2]}（上学期 {row[-2]}，去年同期 {row[-1]}）")
    if res.keywords:
        lines.append("意见关键词：" + "、".join(f"{w}（{len(ts)}）" for w, ts in res.keywords))
    return "\n".join(lines)


def write_results(path: str, res: Results) -> None:
    """The results as an XLSX: the table with a bar chart of the share satisfied, the comments, the keywords."""
    from openpyxl import load_workbook
    from openpyxl.chart import BarChart, Reference

    from bot.export import Sheet, write_workbook

    comment_rows: list[list[object]] = [[item, text] for item, texts in res.comments.items() for text in texts]
    keyword_rows: list[list[object]] = [[w, len(ts), "\n".join(ts)] for w, ts in res.keywords]
    chart_rows: list[list[object]] = [[r.item, round((r.share() or 0) * 100, 1),
                                       round((res.last_term.get(r.item) or 0) * 100, 1),
                                       round((res.last_year.get(r.item) or 0) * 100, 1)] for r in res.items]
    write_workbook(path, [Sheet("满意度", RESULT_HEADER, result_rows(res)),
                          Sheet("意见（匿名）", ["项目", "意见"], comment_rows),
                          Sheet("意见关键词", ["关键词", "条数", "意见"], keyword_rows),
                          Sheet("图表", ["项目", "本次满意率%", "上学期%", "去年同期%"], chart_rows)])
    book = load_workbook(path)
    ws = book["图表"]
    chart = BarChart()
    chart.title = f"{res.survey.period}后勤满意度（满意率%）"
    chart.y_axis.title = "%"
    data = Reference(ws, min_col=2, max_col=4, min_row=1, max_row=len(chart_rows) + 1)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=len(chart_rows) + 1))
    chart.width, chart.height = 20, 10
    ws.add_chart(chart, "F2")
    book.save(path)


def find_survey(db: Session, period: str = "") -> OfficeSurvey | None:
    """The survey of `period` (2026秋), or the latest one."""
    if period:
        return db.scalar(select(OfficeSurvey).where(OfficeSurvey.period == period))
    return db.scalar(select(OfficeSurvey).order_by(OfficeSurvey.opens_on.desc(), OfficeSurvey.id.desc()))


__all__ = ["survey"]
