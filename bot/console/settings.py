"""设置: every school setting as one form, checked exactly as `houqin setting KEY VALUE` checks it
(bot/school.py SETTINGS, each with its check, through `set_setting`); all or nothing: one bad value
saves none and says why beside it. Each change is in 操作记录. Below, the template-message mapping
(HOUQIN_TEMPLATES), with `houqin templates check`'s result on request. Admin changes; bureau reads."""

from __future__ import annotations

from typing import Any

from flask import g, render_template, request
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import Length

from bot.audit import record
from bot.console import base
from bot.console.base import READ_ONLY, actor, bp, requires
from bot.push_kinds import PUSH_KINDS
from bot.school import SETTINGS, get_setting, set_setting
from models import SchoolSetting

SAVED = "已保存 {n} 项设置：{keys}。"
NOTHING_CHANGED = "设置没有变化。"
NOT_SAVED = "有 {n} 项填写有误，所有设置都未保存；请按提示修改后再保存。"
CHECK_OK = "✓ {n} 类推送的模板均已核对"
CHECK_FAILED = "无法获取公众号的模板列表：{error}"
NO_TEMPLATES = "HOUQIN_TEMPLATES 为空：所有推送以客服消息发送（见 houqin templates list）"


class _Refused(Exception):
    """A value was refused: the whole form is rolled back."""


def settings_form(current: dict[str, str]) -> FlaskForm:
    """A Flask-WTF form with a field per setting (its help as the label, its value as the default); the
    values are checked by each setting's own check (`set_setting`), as the CLI checks them."""

    class SettingsForm(FlaskForm):
        pass

    for key, setting in SETTINGS.items():
        setattr(SettingsForm, key, StringField(setting.help, default=current[key], validators=[Length(max=1000)]))
    return SettingsForm()


def _page(form: FlaskForm, message: str = "", problems: list[str] | None = None, checked: str = "",
          status: int = 200) -> Any:
    mapping = base.services().settings.templates
    return render_template("admin/settings.html", settings=SETTINGS, form=form, message=message,
                           mapping=mapping, kinds=PUSH_KINDS, problems=problems or [], checked=checked,
                           no_templates=NO_TEMPLATES, writable="admin" in g.roles), status


def _current() -> dict[str, str]:
    """Every setting's value, in one query (the stored ones over the defaults)."""
    with base.read_db() as db:
        stored: dict[str, str] = {k: v for k, v in db.execute(select(SchoolSetting.key, SchoolSetting.value))}
    return {key: stored.get(key, setting.default) for key, setting in SETTINGS.items()}


@bp.get("/settings")
@requires("admin", READ_ONLY)
def settings() -> Any:
    return _page(settings_form(_current()))


@bp.post("/settings")
@requires("admin")
def settings_save() -> Any:
    form = settings_form(_current())
    if not form.validate_on_submit():
        return _page(form, NOT_SAVED.format(n=len(form.errors)), status=400)
    submitted = {key: form[key].data or "" for key in SETTINGS if key in request.form}
    services = base.services()
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
                    form[key].errors = [str(exc)]
                    continue
                if stored == before:  # 7:30 for 07:30: the same setting
                    continue
                changed.append(key)
                record(db, actor(), "setting_set", key, stored, at=services.now())
            if any(form[key].errors for key in SETTINGS):
                raise _Refused  # leaves the transaction: nothing is saved
    except _Refused:
        refused = sum(1 for key in SETTINGS if form[key].errors)
        return _page(form, NOT_SAVED.format(n=refused), status=400)
    message = SAVED.format(n=len(changed), keys="、".join(changed)) if changed else NOTHING_CHANGED
    return _page(settings_form(_current()), message)


@bp.post("/settings/templates-check")
@requires("admin")
def templates_check() -> Any:
    """The mapping checked against the account's templates: what `houqin templates check` prints."""
    from bot.wechat.gateway import ApiError
    from bot.wechat.templates import check_account

    services = base.services()
    mapping = services.settings.templates
    if not mapping:
        return _page(settings_form(_current()), checked=NO_TEMPLATES)
    try:
        problems = check_account(services.api, services.factory, mapping)
    except ApiError as exc:
        return _page(settings_form(_current()), checked=CHECK_FAILED.format(error=exc))
    return _page(settings_form(_current()), problems=problems, checked="" if problems else CHECK_OK.format(n=len(mapping)))
