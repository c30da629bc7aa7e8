"""The bureau's 通知 to schools' admins (issue 15), with who has read it.

`send_county_notice(county, sender, title, body, slugs)` sends, in each chosen school's own namespace,
a notice N<n> to its 管理员 through the notices engine (handlers.notices.send_notice: the same push, page
and 回执 as any notice there); the main namespace keeps a `CountyNotice` tying each school's N<n> together.
`county_notice_status` reads back, school by school, who has confirmed and who was reminded (once, on the
school's next school day: scheduler.county.remind_unread_county_notices). The console (区县概览) and
`houqin county notify` / `houqin county notices` call these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.county import County, CountyError
from bot.outbox import Outbox
from handlers.notices import ADMINS, AudienceError, find_notice, notice_status, send_notice
from models import CountyNotice, CountyNoticeSchool

BUREAU = "教育局"
NO_TITLE = "请填写通知标题。"
NO_SCHOOL = "请至少选择一所学校。"
NO_BODY = "请填写通知内容。"
SENT_TO = "{name}：通知 {code} 发给 {count} 位管理员；{told}"
NOT_SENT = "{name}：未发送（{why}）"
UNKNOWN = "没有第 {id} 号教育局通知。"


@dataclass
class SchoolPart:
    """One school's part of a bureau notice: who was sent it, who has confirmed and when."""

    slug: str
    name: str
    code: str  # N<n> in that school, "" when nothing was sent there
    told: str
    confirmed: list[tuple[str, datetime]]
    unconfirmed: list[str]
    reminded: list[tuple[str, datetime]] = field(default_factory=list)  # (scheduler.county) who, when


def send_county_notice(county: County, sender: str, title: str, body: str, slugs: list[str] | None = None
                       ) -> tuple[CountyNotice, list[str]]:
    """Send the notice to the admins of the chosen schools (all when `slugs` is None): the county record
    and one line per school saying what happened. Raises CountyError (Chinese) for an unknown school or
    an empty title, before anything is sent."""
    title, body = title.strip(), body.strip()
    if not title:
        raise CountyError(NO_TITLE)
    if not body:
        raise CountyError(NO_BODY)
    entries = county.schools()
    if slugs is not None:
        wanted = list(dict.fromkeys(s.strip() for s in slugs if s.strip()))
        if not wanted:
            raise CountyError(NO_SCHOOL)
        entries = [county.school(slug) for slug in wanted]  # CountyError for an unknown one
    home = county.default
    now = home.now()
    record = CountyNotice(title=title, body=body, sender_name=sender, created_at=now)
    lines = []
    for entry in entries:
        services = county.services(entry.slug)
        part = CountyNoticeSchool(slug=entry.slug)
        with services.factory() as db, db.begin():
            try:
                sent = send_notice(db, Outbox(db, services.settings, services.now()), None, ADMINS[0], title, body,
                                   sender_name=BUREAU)
            except AudienceError as exc:
                part.told = str(exc)
                lines.append(NOT_SENT.format(name=entry.name, why=exc))
            else:
                part.notice_number, part.told = sent.notice.number, sent.told
                lines.append(SENT_TO.format(name=entry.name, code=sent.notice.code,
                                            count=len(sent.notice.recipients), told=sent.told))
        record.schools.append(part)
    with home.factory() as db, db.begin():
        db.add(record)
    return record, lines


def county_notices(county: County, limit: int = 50) -> list[CountyNotice]:
    with county.default.factory() as db:
        return list(db.scalars(select(CountyNotice).order_by(CountyNotice.id.desc()).limit(limit)
                               .options(selectinload(CountyNotice.schools))))


def get_county_notice(county: County, notice_id: int) -> CountyNotice | None:
    with county.default.factory() as db:
        return db.scalar(select(CountyNotice).where(CountyNotice.id == notice_id)
                         .options(selectinload(CountyNotice.schools)))


def county_notice_status(county: County, notice: CountyNotice) -> list[SchoolPart]:
    """Each school's admins who have and have not confirmed, read from that school's own namespace."""
    names = {e.slug: e.name for e in county.schools()}
    parts = []
    for row in notice.schools:
        name = names.get(row.slug, row.slug)
        if not row.notice_number or row.slug not in names:
            parts.append(SchoolPart(row.slug, name, "", row.told, [], []))
            continue
        with county.services(row.slug).factory() as db:
            found = find_notice(db, f"N{row.notice_number}")
            if found is None:
                parts.append(SchoolPart(row.slug, name, "", row.told, [], []))
                continue
            st = notice_status(found)
            parts.append(SchoolPart(row.slug, name, found.code, row.told,
                                    [(r.name, r.confirmed_at) for r in st.confirmed if r.confirmed_at is not None],
                                    [r.name for r in st.unconfirmed],
                                    [(r.name, r.reminded_at) for r in found.recipients if r.reminded_at is not None]))
    return parts


def unknown(notice_id: int) -> str:
    return UNKNOWN.format(id=notice_id)
