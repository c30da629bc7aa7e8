"""WeChat template messages under the rules in force since 2023-05-04.

A template's keywords are typed by their name (`thing2`, `time4`, `character_string1` …) and WeChat
cuts or drops what does not fit: no `first`/`remark`, no colours or emoji, one line, `thing` at most
20 characters and so on. `HOUQIN_TEMPLATES` maps a push kind (bot.push_kinds) to a template id and,
per keyword, a format over the kind's fields; `Template.render` fills and fits them, so what WeChat
shows is what we chose. `check_templates` compares the mapping with the account's template library.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.push_kinds import FIELD_TIME_FORMAT, TITLE_LIMIT, example_fields, fit_length, one_line, push_kind

# a keyword's type is its name without the trailing number; the value's limit in characters
TYPE_LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32,
               "car_number": 8, "phone_number": 17, "amount": 11, "time": 20, "date": 20, "const": 20}
DATE_TYPES = {"time": "%Y年%m月%d日 %H:%M", "date": "%Y年%m月%d日"}
OLD_FORM = ("the retired form {{\"kind\": \"template id\"}} (first/content/remark templates, which WeChat "
            "no longer shows) is not accepted. Write each kind as {{\"template_id\": \"…\", \"data\": "
            "{{\"<keyword>\": \"<format>\"}}}}, e.g. {example}; `houqin templates list` shows each kind's fields.")
BAD_SHAPE = "{kind!r} must be {{\"template_id\": \"…\", \"data\": {{\"<keyword>\": \"<format>\"}}}}"
UNKNOWN_FIELD = "{kind!r}: {keyword!r} names {name!r}, not a field of this kind ({fields})"
BAD_FORMAT = "{kind!r}: {keyword!r} is not a valid format: {error}"



# -- fitting a value to a keyword's type -------------------------------------------------------------
def keyword_type(keyword: str) -> str:
    return keyword.rstrip("0123456789")


def fit(keyword: str, value: str) -> str:
    """`value` as WeChat would show it in `keyword`: one line, no emoji, dates in WeChat's form,
    at most the type's length (a cut value ends with "…")."""
    kind = keyword_type(keyword)
    value = one_line(value)
    if kind in DATE_TYPES:
        for pattern in (FIELD_TIME_FORMAT, "%Y-%m-%d"):
            try:
                return datetime.strptime(value, pattern).strftime(DATE_TYPES[kind])
            except ValueError:
                continue
    return fit_length(value, TYPE_LIMITS.get(kind, TITLE_LIMIT))


# -- the operator's mapping (HOUQIN_TEMPLATES) -----------------------------------------------------
@dataclass(frozen=True)
class Template:
    template_id: str
    data: Mapping[str, str]  # keyword -> format over the kind's fields

    def render(self, fields: Mapping[str, str]) -> dict[str, dict[str, str]]:
        """The `data` of a template send: each keyword's format filled from `fields` and fitted."""
        return {keyword: {"value": fit(keyword, fmt.format_map(_Blank(fields)))} for keyword, fmt in self.data.items()}


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def format_names(fmt: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None]


def parse_templates(raw: str) -> dict[str, Template]:
    """HOUQIN_TEMPLATES, checked: every kind maps to a template id and keyword formats over its fields.
    Raises ValueError with what to write instead."""
    value = json.loads(raw) if raw.strip() else {}
    if not isinstance(value, dict):
        raise ValueError("not a JSON object of push kind → {\"template_id\": …, \"data\": …}")
    templates = {}
    for kind, entry in value.items():
        if isinstance(entry, str):
            example = json.dumps({kind: {"template_id": entry, "data": {"thing1": "{title}", "time2": "{time}"}}},
                                 ensure_ascii=False)
            raise ValueError(OLD_FORM.format(example=example))
        data = entry.get("data") if isinstance(entry, dict) else None
        if not (isinstance(entry, dict) and isinstance(entry.get("template_id"), str) and entry["template_id"]
                and isinstance(data, dict) and data and all(isinstance(v, str) for v in data.values())):
            raise ValueError(BAD_SHAPE.format(kind=kind))
        known = set(push_kind(kind).all_fields)
        for keyword, fmt in data.items():
            try:
                names = format_names(fmt)
            except ValueError as exc:
                raise ValueError(BAD_FORMAT.format(kind=kind, keyword=keyword, error=exc)) from exc
            for name in names:
                if name not in known:
                    raise ValueError(UNKNOWN_FIELD.format(kind=kind, keyword=keyword, name=name,
                                                          fields=", ".join(push_kind(kind).all_fields)))
        templates[str(kind)] = Template(entry["template_id"], {str(k): v for k, v in data.items()})
    return templates


# -- checking the mapping against the account's templates (`houqin templates check`) ---------------
KEYWORD = re.compile(r"\{\{(\w+)\.DATA\}\}")
OFTEN = 0.25  # a keyword cut in more than this share of the sampled pushes is reported
CHECK_MISSING = "{kind}：模板 {template_id} 不在公众号的模板库中"
CHECK_KEYWORD = "{kind}：关键词 {keyword} 不在模板「{title}」的内容中（有：{keywords}）"
CHECK_LONG = "{kind}：{keyword} 的值（{fmt}）常超过 {type} 的 {limit} 字上限，{cut}/{total} 条会被截断"


def check_templates(templates: Mapping[str, Template], library: Sequence[Mapping[str, str]],
                    samples: Mapping[str, list[dict[str, str]]]) -> list[str]:
    """Problems with the mapping, per kind: a template not in `library` (the account's templates), a
    keyword not in its content, or a keyword whose value is cut in more than a quarter of `samples`
    (recent pushes' fields, else the kind's example)."""
    by_id = {t.get("template_id", ""): t for t in library}
    problems = []
    for kind, template in templates.items():
        found = by_id.get(template.template_id)
        if found is None:
            problems.append(CHECK_MISSING.format(kind=kind, template_id=template.template_id))
            continue
        keywords = KEYWORD.findall(found.get("content", ""))
        rows = samples.get(kind) or [example_fields(kind)]
        for keyword, fmt in template.data.items():
            if keyword not in keywords:
                problems.append(CHECK_KEYWORD.format(kind=kind, keyword=keyword, title=found.get("title", ""),
                                                     keywords="、".join(keywords)))
                continue
            kind_of = keyword_type(keyword)
            if kind_of in DATE_TYPES:
                continue
            limit = TYPE_LIMITS.get(kind_of, TITLE_LIMIT)
            cut = sum(len(one_line(fmt.format_map(_Blank(row)))) > limit for row in rows)
            if cut > OFTEN * len(rows):
                problems.append(CHECK_LONG.format(kind=kind, keyword=keyword, fmt=fmt, type=kind_of, limit=limit,
                                                  cut=cut, total=len(rows)))
    return problems


def check_account(api: Any, factory: Any, templates: Mapping[str, Template], sample: int = 50) -> list[str]:
    """`houqin templates check` and the console's 设置 page: the mapping checked against the account's
    templates (fetched through `api`) and the last `sample` pushes of each kind. Raises ApiError."""
    from sqlalchemy import select

    from models import Push

    library = api.private_templates()
    with factory() as s:
        samples = {kind: [p for p in s.scalars(select(Push.fields).where(Push.kind == kind, Push.fields.is_not(None))
                                                .order_by(Push.id.desc()).limit(sample)) if p]
                   for kind in templates}
    return check_templates(templates, library, samples)
