"""Bind-code slips (绑定码条): a printable A4 PDF per class, one slip to cut out per student for the
parents, or one per staff member: the name, the code, a QR code `bind:<code>` (scanning it follows
the account and binds at once) and three lines of instructions.

`class_slips(factory, api, now, tz, class_name, staff=False)` gathers the slips — the code each holder
can still use, a new one where there is none (a person already bound gets no slip: their code was
used) — and `render_slips(slips, out, heading)` draws them, 8 to a page. `houqin codes slips` and the
console's 人员 page both call these two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.places import place_key
from bot.qrsheet import Layout, cut_sheet, draw_qr
from bot.wechat.gateway import WeChatApi
from models import BindCode, Person, Student

PARENT_TITLE = "{name} 家长"
PARENT_LINES = ("1. 微信扫右侧二维码，关注公众号即绑定为{name}的家长",
                "2. 或关注公众号后发送：绑定 {code}",
                "3. {until}前有效，家中每位家长都可使用，请勿外传")
STAFF_LINES = ("1. 微信扫右侧二维码，关注公众号即完成绑定",
               "2. 或关注公众号后发送：绑定 {code}",
               "3. 仅限本人使用一次，{until}前有效；绑定后发「帮助」")
PARENT_HEADING = "{class_name} 家长绑定码"
STAFF_HEADING = "{class_name}教职工绑定码"
EVERY_STAFF = "全体"
NO_STUDENTS = "{class_name}没有学生（先导入学生：houqin students import 文件）"
NO_STAFF = "{class_name}没有需要绑定的教职工（已绑定的人不再打印）"
SLIPS = Layout(columns=2, rows=4, margin=10, top=18, heading_size=14, heading_drop=12, inset=1)


@dataclass
class Slip:
    title: str  # 陈小明 家长 / 张丽
    subtitle: str  # the class, or the person's roles
    code: str
    until: str  # 2026-12-08
    lines: tuple[str, str, str]
    url: str = ""  # what the QR code encodes (filled by class_slips)


def _usable(db: Session, now: datetime, person: Person | None = None,
            student: Student | None = None) -> BindCode | None:
    """The holder's code that still binds: not revoked, not expired (a person's: not used either)."""
    query = select(BindCode).where(BindCode.revoked_at.is_(None), BindCode.expires_at > now)
    if person is not None:
        query = query.where(BindCode.person_id == person.id, BindCode.used_at.is_(None))
    else:
        assert student is not None
        query = query.where(BindCode.student_id == student.id)
    return db.scalar(query.order_by(BindCode.expires_at.desc()).limit(1))


def gather(db: Session, now: datetime, tz: tzinfo, class_name: str, staff: bool = False) -> tuple[list[Slip], int]:
    """The slips of a class's students (or, `staff`, of the people of the class — every unbound one for
    `class_name` empty), issuing a code where none is usable. Returns them and how many codes were new."""
    from handlers.identity import issue_code
    from models.identity import ROLE_NAMES

    key = place_key(class_name) if class_name else ""
    slips, issued = [], 0
    if staff:
        people = [p for p in db.scalars(select(Person).order_by(Person.name, Person.id))
                  if (not key or (p.class_name and place_key(p.class_name) == key))
                  and p.role_set - {"parent"} and not p.bindings]
        for person in people:
            code = _usable(db, now, person=person)
            if code is None:
                code, issued = issue_code(db, now, person=person), issued + 1
            until = f"{code.expires_at.astimezone(tz):%Y-%m-%d}"
            roles = "、".join(ROLE_NAMES.get(r, r) for r in sorted(person.role_set) if r != "parent")
            slips.append(Slip(person.name, " ".join(filter(None, (person.class_name, roles))), code.code, until,
                              tuple(line.format(code=code.code, until=until) for line in STAFF_LINES)))  # type: ignore[arg-type]
        return slips, issued
    students = [s for s in db.scalars(select(Student).order_by(Student.name, Student.id))
                if s.class_name and place_key(s.class_name) == key]
    for student in students:
        code = _usable(db, now, student=student)
        if code is None:
            code, issued = issue_code(db, now, student=student), issued + 1
        until = f"{code.expires_at.astimezone(tz):%Y-%m-%d}"
        slips.append(Slip(PARENT_TITLE.format(name=student.name), student.class_name, code.code, until,
                          tuple(line.format(name=student.name, code=code.code, until=until)  # type: ignore[arg-type]
                                for line in PARENT_LINES)))
    return slips, issued


def class_slips(factory: sessionmaker[Session], api: WeChatApi, now: datetime, tz: tzinfo, class_name: str,
                staff: bool = False) -> tuple[list[Slip], int]:
    """`gather` in its own transaction (new codes are kept even if WeChat then fails), then each slip's
    temporary QR code `bind:<code>`, valid as long as the code. Raises ApiError when WeChat refuses."""
    with factory() as db, db.begin():
        slips, issued = gather(db, now, tz, class_name, staff)
        expiries = {c.code: c.expires_at for c in db.scalars(select(BindCode).where(
            BindCode.code.in_([s.code for s in slips])))}
    for slip in slips:
        seconds = int((expiries[slip.code] - now).total_seconds())
        slip.url = str(api.create_qrcode(f"bind:{slip.code}", expire_seconds=seconds)["url"])
    return slips, issued


def heading(class_name: str, staff: bool) -> str:
    return (STAFF_HEADING if staff else PARENT_HEADING).format(class_name=class_name or EVERY_STAFF)


def render_slips(slips: list[Slip], out: str | Path | IO[bytes], title: str) -> int:
    """Draw the slips on A4 pages, 2 by 4, with dashed cut lines; returns the number of pages."""
    from reportlab.lib.units import mm
    from reportlab.pdfbase.pdfmetrics import stringWidth

    qr = 34 * mm

    def slip_cell(canvas: Any, font: str, slip: Slip, x0: float, y0: float, cell_w: float, cell_h: float) -> None:
        left, line_top = x0 + 5 * mm, y0 + cell_h - 11 * mm
        canvas.setFont(font, 15)
        canvas.drawString(left, line_top, slip.title[:14])
        canvas.setFont(font, 9)
        canvas.drawString(left, line_top - 6 * mm, slip.subtitle[:24])
        canvas.setFont(font, 11)
        canvas.drawString(left, line_top - 14 * mm, "绑定码")
        canvas.setFont("Courier-Bold", 20)
        canvas.drawString(left + 14 * mm, line_top - 14.5 * mm, slip.code)
        draw_qr(canvas, slip.url or f"bind:{slip.code}", x0 + cell_w - qr - 4 * mm, y0 + cell_h - qr - 6 * mm, qr)
        room = cell_w - 9 * mm
        for n, line in enumerate(slip.lines):  # a long name shrinks its line rather than leave the slip
            canvas.setFont(font, min(8.5, 8.5 * room / stringWidth(line, font, 8.5)))
            canvas.drawString(left, y0 + 15 * mm - n * 4.5 * mm, line)

    return cut_sheet(slips, out, title, SLIPS, slip_cell)
