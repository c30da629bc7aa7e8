"""Recognising places however teachers write them: 三(2)班, 三年级2班, 3-2 and 三2班 are one room.

`place_key` reduces a place to a comparable key (classes to "班:3-2", anything else to its folded
text); `find_room` looks the key up among the registered rooms' names and aliases.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.text import chinese_to_int, normalize
from models import Asset, Room

_GRADE = r"[1-9]|[一二三四五六七八九]"
_CLASS = r"\d{1,2}|[一二三四五六七八九十]{1,3}"
_CLASS_FORMS = [
    re.compile(rf"^(?P<g>{_GRADE})年级\(?(?P<c>{_CLASS})\)?班?$"),  # 三年级2班, 三年级(2)班
    re.compile(rf"^(?P<g>{_GRADE})\((?P<c>{_CLASS})\)班?$"),  # 三(2)班, 3(2)
    re.compile(rf"^(?P<g>{_GRADE})-(?P<c>{_CLASS})班?$"),  # 3-2, 三-2班
    re.compile(rf"^(?P<g>[一二三四五六七八九])(?P<c>{_CLASS})班$"),  # 三2班, 三二班
]
_DASHES = str.maketrans({"—": "-", "–": "-", "－": "-", "_": "-"})


def _number(word: str) -> int | None:
    return int(word) if word.isdigit() else chinese_to_int(word)


def place_key(text: str) -> str:
    """A key equal for every way of writing one place: classes become "班:<grade>-<class>"."""
    folded = normalize(text).translate(_DASHES).replace(" ", "").lower()
    bare = folded.removesuffix("教室") or folded
    for form in _CLASS_FORMS:
        match = form.match(bare)
        if match:
            grade, number = _number(match["g"]), _number(match["c"])
            if grade and number:
                return f"班:{grade}-{number}"
    return folded


def room_keys(room: Room) -> set[str]:
    names = [room.name, *room.alias_list]
    keys = {place_key(n) for n in names}
    if room.building:
        keys |= {place_key(room.building + n) for n in names}
    return keys


def _registry(db: Session) -> list[tuple[Room, set[str]]]:
    return [(room, room_keys(room)) for room in db.scalars(select(Room).order_by(Room.id))]


def find_room(db: Session, text: str) -> Room | None:
    """The registered room `text` names, by name or alias, however it is written; else None."""
    key = place_key(text)
    return next((room for room, keys in _registry(db) if key and key in keys), None)


def split_place(db: Session, text: str) -> tuple[Room, str] | None:
    """A registered room written at the start of `text` with no space after it, and the rest:
    "三年级二班投影仪不亮" (as voice input arrives) → (三(2)班, "投影仪不亮")."""
    registry = _registry(db)
    for end in range(len(text) - 1, 0, -1):  # the longest name first
        key = place_key(text[:end])
        room = next((r for r, keys in registry if key in keys), None)
        if room is not None:
            return room, text[end:].strip()
    return None


def find_place_in(db: Session, text: str) -> tuple[Room, str, str] | None:
    """The first registered room a sentence names, anywhere in it (the longest name at the first place
    one starts), with what comes before and after: "三年级二班的投影仪坏了" → (三(2)班, "", "的投影仪坏了")."""
    by_key: dict[str, Room] = {}
    for room, keys in _registry(db):
        for key in keys:
            by_key.setdefault(key, room)
    if not by_key:
        return None
    for start in range(len(text) - 1):
        if text[start] in " ,.!?:;、，。！？：；的了":
            continue
        for end in range(len(text), start + 1, -1):  # the longest name first
            found = by_key.get(place_key(text[start:end]))
            if found is not None:
                return found, text[:start], text[end:]
    return None


def find_asset(db: Session, text: str) -> Asset | None:
    """The asset whose code is `text` (codes are matched case-insensitively)."""
    code = normalize(text).replace(" ", "")
    if not code:
        return None
    return db.scalar(select(Asset).where(func.lower(Asset.code) == code.lower()))
