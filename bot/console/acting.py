"""What the pages that act share: a form's refusal (the page's own Chinese sentence with a 400, and
nothing changed), its fields read and checked."""

from __future__ import annotations

from typing import NoReturn

from flask import abort, make_response, render_template, request

from bot.console.base import _CONTROL

BAD_REQUEST = "请求有误"
TOO_LONG = "「{label}」太长了：最多 {limit} 个字。"
CONTROL = "「{label}」里有不能保存的控制字符，请重新输入。"


def refuse(text: str, status: int = 400) -> NoReturn:
    """Answer the form with `text` (what is wrong and how to put it right) and change nothing."""
    abort(make_response(render_template("admin/error.html", title=BAD_REQUEST, text=text), status))


def field(name: str, label: str, limit: int, form: dict[str, str] | None = None, lines: bool = False) -> str:
    """A form field's text, stripped; refused if longer than `limit` or holding control characters
    (line breaks are allowed where `lines`)."""
    value = (form if form is not None else request.form).get(name, "").strip()
    if len(value) > limit:
        refuse(TOO_LONG.format(label=label, limit=limit))
    if _CONTROL.search(value.replace("\r\n", "\n").replace("\n", "") if lines else value):
        refuse(CONTROL.format(label=label))
    return value


