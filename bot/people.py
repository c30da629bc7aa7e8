"""Finding a person by the name someone wrote: the one place every command that takes a name asks.

Schools do have two 张丽. A name may be followed by a class (张丽 三(2)班) or the last four digits
of a phone (张丽 0003) to pick one; when a name still fits several people, the answer lists them
and says how to write it. The people import uses the same descriptions to warn about namesakes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.text import normalize, tidy
from models import ROLE_NAMES, Person, PersonRole

NOBODY = "没有名为「{name}」的人员"
AMBIGUOUS = "有{count}位「{name}」：{listing}——请写 {example} 或手机号后四位"
AMBIGUOUS_BY_PHONE = "有{count}位「{name}」：{listing}——请在姓名后加手机号后四位，例如 {example}"
COUNTS = "零一两三四五六七八九"
PHONE_TAIL = 4


class PersonNotFound(LookupError):
    """The name fits nobody, or several people; the message (Chinese) says which and what to write."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoSuchPerson(PersonNotFound):
    pass


class AmbiguousName(PersonNotFound):
    pass


def masked_phone(phone: str) -> str:
    """13800000003 → 138****0003: enough to tell people apart in a reply, not enough to call them."""
    return f"{phone[:3]}****{phone[-PHONE_TAIL:]}" if len(phone) > PHONE_TAIL + 3 else phone


def describe(person: Person) -> str:
    """张丽（三(2)班，138****0003）: a person told apart from namesakes by class and phone (or roles)."""
    details = [d for d in (person.class_name, masked_phone(person.phone)) if d] or [
        "、".join(ROLE_NAMES.get(r.role, r.role) for r in person.roles)]
    return f"{person.name}（{'，'.join(details)}）" if any(details) else person.name


def selector(person: Person, namesakes: Sequence[Person]) -> str | None:
    """What to write after the name to pick `person` among `namesakes` (its class, or its phone's
    last four digits), or None when neither tells it apart."""
    others = [p for p in namesakes if p is not person]
    if person.class_name and all(normalize(p.class_name) != normalize(person.class_name) for p in others):
        return person.class_name
    tail = person.phone[-PHONE_TAIL:]
    if len(person.phone) >= PHONE_TAIL and all(p.phone[-PHONE_TAIL:] != tail for p in others):
        return tail
    return None


def _fits(person: Person, word: str) -> bool:
    """Whether a word written after the name is this person's class or their phone (or its end)."""
    word = normalize(word)
    if person.class_name and word == normalize(person.class_name):
        return True
    digits = word.replace("-", "")
    return len(digits) >= PHONE_TAIL and digits.isdigit() and person.phone.endswith(digits)


def _named(db: Session, name: str, roles: Iterable[str]) -> list[Person]:
    query = select(Person).where(Person.name == name).order_by(Person.id)
    if roles := tuple(roles):
        query = query.join(PersonRole).where(PersonRole.role.in_(roles))
    return list(db.scalars(query).unique())


def ambiguity(name: str, candidates: Sequence[Person]) -> str:
    """有两位「张丽」：张丽（三(2)班，138****0003）、张丽（四(1)班）——请写 张丽 三(2)班 或手机号后四位"""
    count = COUNTS[len(candidates)] if len(candidates) < len(COUNTS) else str(len(candidates))
    listing = "、".join(describe(p) for p in candidates)
    by_class = next((p.class_name for p in candidates if p.class_name and selector(p, candidates) == p.class_name),
                    None)
    if by_class is not None:
        return AMBIGUOUS.format(count=count, name=name, listing=listing, example=f"{name} {by_class}")
    tail = next((s for p in candidates if (s := selector(p, candidates))), "0003")
    return AMBIGUOUS_BY_PHONE.format(count=count, name=name, listing=listing, example=f"{name} {tail}")


def find_person(db: Session, words: Sequence[str], roles: Iterable[str] = ()) -> tuple[Person, list[str]]:
    """The person the first words name (with `roles`, if given), and the words left after the name
    and any class or phone digits that picked them: ["张丽", "三(2)班", "明天"] → (张丽 of 三(2)班,
    ["明天"]). Raises NoSuchPerson or AmbiguousName with the answer to give."""
    roles = tuple(roles)
    words = [w for w in words if w]
    if not words:
        raise NoSuchPerson(NOBODY.format(name=""))
    for end in range(len(words), 0, -1):  # a name may hold a space ("Li Lei"): the longest one that fits
        candidates = _named(db, " ".join(words[:end]), roles)
        if candidates:
            break
    else:
        raise NoSuchPerson(NOBODY.format(name=words[0]))
    name, rest = " ".join(words[:end]), words[end:]
    while rest and (narrowed := [p for p in candidates if _fits(p, rest[0])]):
        candidates, rest = narrowed, rest[1:]
    if len(candidates) > 1:
        raise AmbiguousName(ambiguity(name, candidates))
    return candidates[0], rest


def resolve_person(db: Session, text: str, roles: Iterable[str] = ()) -> Person:
    """The one person `text` names: 张丽, or 张丽 三(2)班, or 张丽 0003. Raises PersonNotFound."""
    words = tidy(text).split(" ")
    person, rest = find_person(db, words, roles)
    if rest:
        raise NoSuchPerson(NOBODY.format(name=tidy(text)))
    return person


__all__ = ["AmbiguousName", "NoSuchPerson", "PersonNotFound", "ambiguity", "describe", "find_person",
           "masked_phone", "resolve_person", "selector"]
