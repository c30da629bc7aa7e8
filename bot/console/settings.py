"""设置: every school setting as one form, checked exactly as `houqin setting KEY VALUE` checks it
(bot/school.py SETTINGS, each with its check, through `set_setting`); all or nothing: one bad value
saves none and says why beside it. Each change is in 操作记录. Below, the template-message mapping
(HOUQIN_TEMPLATES), with `houqin templates check`'s result on request. Admin changes; bureau reads."""

from __future__ import annotations

from typing import Any

from flask import g, render_template, request

from bot.audit import record
from bot.console import base
from bot.console.base import READ_ONLY, actor, bp, requires
from bot.push_kinds import PUSH_KINDS
from bot.school import SETTINGS, get_setting, set_setting

SAVED = "已保存 {n} 项设置：{keys}。"
NOTHING_CHANGED = "设置没有变化。"
NOT_SAVED = "有 {n} 项填写有误，所有设置都未保存；请按提示修改后再保存。"
CHECK_OK = "✓ {n} 类推送的模板均已核对"
CHECK_FAILED = "无法获取公众号的模板列表：{error}"
NO_TEMPLATES = "HOUQIN_TEMPLATES 为空：所有推送以客服消息发送（见 houqin templates list）"


class _Refused(Exception):
    """A value was refused: the whole form is rolled back."""


def _page(values: dict[str, str], errors: dict[str, str], message: str = "", problems: list[str] | None = None,
          checked: str = "", status: int = 200) -> Any:
    mapping = base.services().settings.templates
    return render_template("admin/settings.html", settings=SETTINGS, values=values, errors=errors, message=message,
                           mapping=mapping, kinds=PUSH_KINDS, problems=problems or [], checked=checked,
                           no_templates=NO_TEMPLATES, writable="admin" in g.roles), status


def _current() -> dict[str, str]:
    with base.read_db() as db:
        return {key: get_setting(db, key) for key in SETTINGS}


@bp.get("/settings")
@requires("admin", READ_ONLY)
def settings() -> Any:
    return _page(_current(), {})


@bp.post("/settings")
@requires("admin")
def settings_save() -> Any:
    submitted = {key: request.form.get(key, "") for key in SETTINGS if key in request.form}
    services = base.services()
    errors: dict[str, str] = {}
    changed: list[str] = []
    try:
        with base.db() as db, db.begin():
            for key, value in submitted.items():
                before = get_setting(db, key)
                if value.strip() == before:
                    continue
                try:
                    stored = set_setting(db, key, value)
                except ValueError as exc:
                    errors[key] = str(exc)
                    continue
                if stored == before:  # 7:30 for 07:30: the same setting
                    continue
                changed.append(key)
                record(db, actor(), "setting_set", key, stored, at=services.now())
            if errors:
                raise _Refused  # leaves the transaction: nothing is saved
    except _Refused:
        return _page({**_current(), **submitted}, errors, NOT_SAVED.format(n=len(errors)), status=400)
    message = SAVED.format(n=len(changed), keys="、".join(changed)) if changed else NOTHING_CHANGED
    return _page(_current(), {}, message)


@bp.post("/settings/templates-check")
@requires("admin")
def templates_check() -> Any:
    """The mapping checked against the account's templates: what `houqin templates check` prints."""
    from bot.wechat.gateway import ApiError
    from bot.wechat.templates import check_account

    services = base.services()
    mapping = services.settings.templates
    if not mapping:
        return _page(_current(), {}, checked=NO_TEMPLATES)
    try:
        problems = check_account(services.api, services.factory, mapping)
    except ApiError as exc:
        return _page(_current(), {}, checked=CHECK_FAILED.format(error=exc))
    return _page(_current(), {}, problems=problems, checked="" if problems else CHECK_OK.format(n=len(mapping)))
