"""人员: people, students and their parent links, searchable; add, edit and 停用 a person; a new bind
code; one-time password links; and import by upload — previewed (the CLI import's own parsing and
checks, run and rolled back) and written only on 确认导入."""

from __future__ import annotations

import io
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Response, abort, current_app, g, redirect, render_template, request, send_file, url_for
from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.datastructures import FileStorage
from wtforms import SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from bot.audit import record
from bot.console import base
from bot.console.auth import LINK_HOURS, password_link
from bot.console.base import _CONTROL, MAX_ID, actor, bp, requires
from bot.private import write_private
from bot.tables import TableError
from handlers.identity import (
    ADDED,
    CHANGED,
    ImportResult,
    deactivate,
    import_people,
    import_students,
    issue_code,
    reissue_code,
)
from models import BindCode, ParentLink, Person, PersonRole, Student
from models.identity import ROLE_NAMES, ROLES

PAGE = 100  # people (or students) a page
IMPORT_KINDS = {"people": ("人员", import_people), "students": ("学生", import_students)}
UPLOAD_SUFFIXES = (".csv", ".xlsx")
UPLOAD_KEEP = timedelta(days=1)  # an import preview not confirmed within a day is removed (the next preview sweeps)
UPLOAD_BAD = "请上传 CSV 或 XLSX 文件（人员：姓名 角色 手机 班级 线路 负责类别；学生：姓名 班级 线路 站点）。"
UPLOAD_GONE = "这次导入的文件已不在了，请重新上传。"
IMPORTED = "已导入{what}：{result}"
SAME_PERSON = "已有同名同手机的人员：{name} {phone}。"
ADDED_PERSON = "已添加 {name}，绑定码 {code}。"
SAVED_PERSON = "已保存 {name}。"
DEACTIVATED = "已停用 {name}：角色（{roles}）已取消、绑定码已作废、微信已解绑；历史记录保留。"
NO_ROLE = "请至少选一个角色。"
OUTCOME_NAMES = {ADDED: "新增", CHANGED: "修改", "unchanged": "未变"}


def _some_role(form: FlaskForm, field: SelectMultipleField) -> None:
    """At least one role (not DataRequired: its `required` flag would make the browser want every box)."""
    if not field.data:
        raise ValidationError(NO_ROLE)


class PersonForm(FlaskForm):
    """A person as the people import reads one: the same columns, the same phone check."""

    name = StringField("姓名", validators=[DataRequired("请填写姓名。"), Length(max=64)])
    phone = StringField("手机", filters=[lambda v: (v or "").replace(" ", "").replace("-", "")],
                        validators=[Optional(), Regexp(r"\+?\d{7,15}", message="手机号格式不对。")])
    class_name = StringField("班级", validators=[Length(max=64)])
    route = StringField("线路", validators=[Length(max=32)])
    categories = StringField("负责类别（用 ; 或 、 分隔）", validators=[Length(max=200)])
    roles = SelectMultipleField("角色", choices=[SelectChoice(r, ROLE_NAMES[r]) for r in ROLES],
                                widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
                                validators=[_some_role])


@bp.get("/people")
@requires("admin", "bureau")
def people() -> str:
    q, role, class_name = (request.args.get(k, "").strip()[:64] for k in ("q", "role", "class"))
    show = request.args.get("show", "people")
    page_asked = base.number(request.args.get("page", "1"))
    if (role and role not in ROLES) or show not in ("people", "students", "inactive") or _CONTROL.search(q + class_name) \
            or not page_asked:
        abort(400)
    with base.read_db() as db:
        classes = sorted({c for c in db.scalars(select(Student.class_name).distinct()) if c}
                         | {c for c in db.scalars(select(Person.class_name).distinct()) if c})
        if show == "students":
            query = select(Student)
            if q:
                query = query.where(Student.name.contains(q, autoescape=True))
            if class_name:
                query = query.where(Student.class_name == class_name)
            pages = _Pages(db, query, page_asked, show=show, q=q, cls=class_name)
            students = list(db.scalars(query.order_by(Student.class_name, Student.name, Student.id)
                                       .options(selectinload(Student.parents).joinedload(ParentLink.person))
                                       .offset(pages.offset).limit(PAGE)))
            return render_template("admin/people.html", show=show, students=students, people=[], codes={},
                                   classes=classes, roles=ROLES, args=request.args, pages=pages,
                                   done=request.args.get("done", "")[:300])  # the students import's result
        wanted = select(Person).where(
            Person.deactivated_at.is_not(None) if show == "inactive" else Person.deactivated_at.is_(None))
        if q:
            wanted = wanted.where(or_(Person.name.contains(q, autoescape=True), Person.phone.contains(q, autoescape=True)))
        if role:
            wanted = wanted.where(Person.roles.any(PersonRole.role == role))
        if class_name:
            wanted = wanted.where(Person.class_name == class_name)
        pages = _Pages(db, wanted, page_asked, show=show, q=q, role=role, cls=class_name)
        everyone = list(db.scalars(wanted.order_by(Person.name, Person.id)
                                   .options(selectinload(Person.roles), selectinload(Person.bindings))
                                   .offset(pages.offset).limit(PAGE)))
        # the codes of the people shown (not every parent code of the school: one query, not thousands)
        usable = select(BindCode).where(BindCode.person_id.in_([p.id for p in everyone]), BindCode.used_at.is_(None),
                                        BindCode.revoked_at.is_(None), BindCode.expires_at > base.services().now())
        codes = {c.person_id: {"code": c.code} for c in db.scalars(usable.order_by(BindCode.id))
                 if c.person_id is not None}
        return render_template("admin/people.html", show=show, people=everyone, codes=codes, students=[],
                               classes=classes, roles=ROLES, args=request.args, pages=pages,
                               done=request.args.get("done", "")[:300])


class _Pages:
    """Paging of the people or students a search finds: PAGE a page, the total counted in SQL, and the
    links to the page before and after with the search and the filters kept."""

    def __init__(self, db: Session, query: Any, asked: int, **kept: str) -> None:
        self.total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        self.last = max(1, -(-self.total // PAGE))
        self.number = min(asked, self.last)  # past the end: the last page
        self.offset = (self.number - 1) * PAGE
        self.first_shown = self.offset + 1 if self.total else 0
        self.last_shown = min(self.total, self.offset + PAGE)
        args: dict[str, Any] = {"class" if k == "cls" else k: v for k, v in kept.items()
                                if v and not (k == "show" and v == "people")}
        self.earlier = url_for("console.people", **args, page=self.number - 1) if self.number > 1 else ""
        self.later = url_for("console.people", **args, page=self.number + 1) if self.number < self.last else ""


def _person(db: Session, person_id: int) -> Person:
    person = db.get(Person, person_id)
    if person is None:
        abort(404)
    return person


def _fill(person: Person, form: PersonForm) -> list[str]:
    """Copy the form onto the person; what changed, as the audit log's detail."""
    changes = []
    for attr in ("name", "phone", "class_name", "route", "categories"):
        value = (getattr(form, attr).data or "").strip()
        if getattr(person, attr) != value:
            changes.append(f"{getattr(form, attr).label.text}：{getattr(person, attr) or '（空）'} → {value or '（空）'}")
            setattr(person, attr, value)
    wanted = list(dict.fromkeys(form.roles.data or []))
    if person.role_set != set(wanted):
        names = "、".join(ROLE_NAMES[r] for r in wanted)
        changes.append(f"角色：{'、'.join(ROLE_NAMES.get(r, r) for r in sorted(person.role_set))} → {names}")
        person.roles = [r for r in person.roles if r.role in wanted] + [
            PersonRole(role=r) for r in wanted if r not in person.role_set]
    return changes


def _taken(db: Session, form: PersonForm, person_id: int | None) -> bool:
    other = db.scalar(select(Person).where(Person.name == form.name.data.strip(), Person.phone == (form.phone.data or "")))
    return other is not None and other.id != person_id


@bp.route("/people/new", methods=["GET", "POST"])
@requires("admin")
def person_new() -> Any:
    form = PersonForm()
    if form.validate_on_submit():
        now = base.services().now()
        with base.db() as db, db.begin():
            if _taken(db, form, None):
                form.name.errors = [SAME_PERSON.format(name=form.name.data, phone=form.phone.data)]
            else:
                person = Person(created_at=now)
                changes = _fill(person, form)
                db.add(person)
                code = issue_code(db, now, person=person)
                record(db, actor(), "person_add", person.name, "；".join(changes), at=now)
                return redirect(url_for("console.people", q=person.name,
                                        done=ADDED_PERSON.format(name=person.name, code=code.code)))
    return render_template("admin/person_form.html", form=form, person=None), 400 if form.errors else 200


@bp.route(f"/people/<int(max={MAX_ID}):person_id>", methods=["GET", "POST"])
@requires("admin")
def person_edit(person_id: int) -> Any:
    with base.db() as db, db.begin():
        person = _person(db, person_id)
        form = PersonForm(obj=person) if request.method == "GET" else PersonForm()
        if request.method == "GET":
            form.roles.data = sorted(person.role_set)
        elif form.validate_on_submit():
            if _taken(db, form, person.id):
                form.name.errors = [SAME_PERSON.format(name=form.name.data, phone=form.phone.data)]
            else:
                changes = _fill(person, form)
                if changes:
                    record(db, actor(), "person_edit", person.name, "；".join(changes), at=base.services().now())
                return redirect(url_for("console.people", q=person.name, done=SAVED_PERSON.format(name=person.name)))
        return render_template("admin/person_form.html", form=form, person=person), 400 if form.errors else 200


@bp.post(f"/people/<int(max={MAX_ID}):person_id>/deactivate")
@requires("admin")
def person_deactivate(person_id: int) -> Response:
    now = base.services().now()
    with base.db() as db, db.begin():
        person = _person(db, person_id)
        if person.id == g.person_id:
            abort(400)  # not oneself: the console would lock its only admin out
        had = deactivate(db, now, person)
        roles = "、".join(ROLE_NAMES.get(r, r) for r in had) or "无"
        record(db, actor(), "person_deactivate", person.name, f"原角色：{roles}", at=now)
        done = DEACTIVATED.format(name=person.name, roles=roles)
    return redirect(url_for("console.people", show="inactive", done=done))  # type: ignore[return-value]


@bp.post(f"/people/<int(max={MAX_ID}):person_id>/reissue")
@requires("admin")
def person_reissue(person_id: int) -> Response:
    """A new bind code, as `houqin codes reissue` and 重发绑定码 give one: the old codes and bindings end."""
    svc = base.services()
    with base.db() as db, db.begin():
        person = _person(db, person_id)
        done = reissue_code(db, svc.now(), person, svc.settings.tz)
        record(db, actor(), "code_reissue", person.name, at=svc.now())
    return redirect(url_for("console.people", q=person.name, done=done))  # type: ignore[return-value]


@bp.post(f"/people/<int(max={MAX_ID}):person_id>/password-link")
@requires("admin")
def make_password_link(person_id: int) -> str:
    """A one-time link for this person to set their console password (shown once, to hand over)."""
    now = base.services().now()
    with base.db() as db, db.begin():
        person = _person(db, person_id)
        try:
            link = password_link(db, person, now)
        except ValueError as exc:
            return render_template("admin/message.html", title="设置密码链接", text=str(exc))
        record(db, actor(), "password_link", person.name, at=now)
        return render_template("admin/password_link.html", person=person, link=link, hours=LINK_HOURS)


@bp.get("/people/slips")
@requires("admin")
def slips() -> Any:
    """The bind-code slips of a class (?class=三(2)班) for the parents, or ?staff=1 of its staff (the whole
    school's unbound staff without a class), as a PDF to print: bot/slips.py, as `houqin codes slips`."""
    from bot.fonts import FontMissing
    from bot.slips import NO_STAFF, NO_STUDENTS, class_slips, heading, render_slips
    from bot.wechat.gateway import ApiError

    class_name = request.args.get("class", "").strip()[:64]
    staff = request.args.get("staff", "") == "1"
    if not class_name and not staff:
        abort(400)
    svc = base.services()
    try:
        made, _ = class_slips(svc.factory, svc.api, svc.now(), svc.settings.tz, class_name, staff)
        if not made:
            text = (NO_STAFF if staff else NO_STUDENTS).format(class_name=class_name or "全校")
            return render_template("admin/message.html", title="绑定码条", text=text), 404
        pdf = io.BytesIO()
        title = heading(class_name, staff)
        render_slips(made, pdf, title)
    except (ApiError, FontMissing) as exc:
        return render_template("admin/message.html", title="绑定码条", text=str(exc)), 502
    pdf.seek(0)
    return send_file(pdf, mimetype="application/pdf", as_attachment=True, download_name=f"{title}.pdf")


# -- import by upload: preview, then 确认导入 --------------------------------------------------------------
def _upload_dir() -> Path:
    return base.services().settings.instance_dir / "uploads"


def _sweep_uploads() -> int:
    """Remove the previews never confirmed (nor refused): import uploads older than UPLOAD_KEEP. Done
    when a new preview is made, so the folder holds at most a day of abandoned files. How many went."""
    folder = _upload_dir()
    if not folder.is_dir():
        return 0
    oldest = (base.services().now() - UPLOAD_KEEP).timestamp()
    removed = 0
    for kind in IMPORT_KINDS:
        for path in folder.glob(f"{kind}-*"):
            try:
                if path.is_file() and path.stat().st_mtime < oldest:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # confirmed (or swept) by another request meanwhile
                continue
    return removed


def _upload_path(token: str, kind: str) -> Path:
    if not (token.isalnum() and len(token) <= 64) or kind not in IMPORT_KINDS:
        abort(400)
    matches = sorted(_upload_dir().glob(f"{kind}-{token}.*"))
    if not matches:
        abort(410)
    return matches[0]


def _run(kind: str, path: Path, commit: bool) -> tuple[ImportResult | None, list[str]]:
    """The CLI's import of `path`, in a transaction that is committed only when asked: the preview is
    the very import, rolled back."""
    importer = IMPORT_KINDS[kind][1]
    now = base.services().now()
    with base.db() as db:
        db.begin()
        try:
            result = importer(db, path, now)
        except TableError as exc:
            db.rollback()
            return None, list(exc.problems)
        if commit:
            record(db, actor(), f"{kind}_import", path.name.split("-", 2)[-1], str(result), at=now)
            db.commit()
        else:
            db.rollback()
        return result, []


@bp.route("/people/import", methods=["GET", "POST"])
@requires("admin")
def people_import() -> Any:
    kind = request.values.get("kind", "people")
    if kind not in IMPORT_KINDS:
        abort(400)
    if request.method == "GET":
        return render_template("admin/people_import.html", kind=kind, kinds=IMPORT_KINDS, result=None, problems=[],
                               token="", error="", outcome_names=OUTCOME_NAMES, filename="")
    upload: FileStorage | None = request.files.get("file")
    filename = (upload.filename or "") if upload else ""
    suffix = Path(filename).suffix.lower()
    if upload is None or suffix not in UPLOAD_SUFFIXES:
        return render_template("admin/people_import.html", kind=kind, kinds=IMPORT_KINDS, result=None, problems=[],
                               token="", error=UPLOAD_BAD, outcome_names=OUTCOME_NAMES, filename=""), 400
    _sweep_uploads()
    token = secrets.token_hex(16)
    path = _upload_dir() / f"{kind}-{token}{suffix}"
    write_private(path, upload.read(current_app.config.get("MAX_CONTENT_LENGTH") or 5_000_000))
    result, problems = _run(kind, path, commit=False)
    if problems:
        path.unlink(missing_ok=True)
    return render_template("admin/people_import.html", kind=kind, kinds=IMPORT_KINDS, result=result,
                           problems=problems, token=token if result else "", error="", outcome_names=OUTCOME_NAMES,
                           filename=filename), 400 if problems else 200


@bp.post("/people/import/confirm")
@requires("admin")
def people_import_confirm() -> Any:
    kind, token = request.form.get("kind", ""), request.form.get("token", "")
    path = _upload_path(token, kind)
    result, problems = _run(kind, path, commit=True)
    path.unlink(missing_ok=True)
    if result is None:  # the data changed since the preview and the file no longer imports
        return render_template("admin/people_import.html", kind=kind, kinds=IMPORT_KINDS, result=None,
                               problems=problems, token="", error="", outcome_names=OUTCOME_NAMES,
                               filename=""), 400
    done = IMPORTED.format(what=IMPORT_KINDS[kind][0], result=result)
    return redirect(url_for("console.people", show="students" if kind == "students" else "people",
                            done=done))  # type: ignore[return-value]
