"""Signing in to the console and out of it. Only admins with a console password
(`houqin console-password NAME`) may sign in.

Sessions. A signed-in browser's cookie (signed, HttpOnly, SameSite=Lax, Secure when HOUQIN_PUBLIC_URL
is https) holds the person, the account's `session_version` when it signed in, and when it was last
used. Every console request checks, in one query, that the account still has that version and the
person is still an admin, and that the session was used within `console_idle_hours` (a school
setting, 8 by default); otherwise the browser signs in again. Logout, a new password and giving or
taking the admin role (models.console) bump the version: every browser of that account is signed out.

Sign-in attempts. Failures are counted under three keys (`console_login_throttles`), each in a
15-minute window:
- a name from one address, 5: the lock per account. Whoever guesses from their address is shut
  out of that name after 5 wrong passwords; the real admin, from the office's address, is another
  key and still signs in with the right password. (Someone behind the office's own address can
  shut it out for 15 minutes, as with any lock.)
- an address, 20 whatever the names: slows one machine trying many names (or many spellings).
- a name, 50 from every address together: the ceiling for guesses from many addresses. The
  addresses the account last signed in from (`known_addresses`, the last 5) are spared it, so an
  attacker with many machines still cannot shut the office out.
An attempt is counted before its password is checked: one conditional UPDATE a key
(`failures + 1 … WHERE failures < limit`, or a new window) in a transaction committed before the
slow hash. A key at its limit updates nothing and no password is checked, so parallel attempts
cannot check more than the limit. A right password gives its counts back (the name-and-address
count is cleared).

Names without an account (or without a console password) go through the same keys, and their
password is checked against a dummy hash: the message, the lock and the time taken are the same as
for a real name with a wrong password. Only the right password of an account tells more (that
its person is no longer an admin).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from flask import Response, abort, current_app, g, redirect, render_template, request, session, url_for
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from bot.audit import record
from bot.console import base
from bot.console.base import _CONTROL, CONSOLE_ROLES, LOCKED, actor, bp, requires
from models import Person
from models.console import ConsoleAccount, ConsoleLoginThrottle, revoke_sessions

WINDOW = timedelta(minutes=15)
MAX_FAILED = 5  # a name from one address
MAX_FAILED_ADDRESS = 20  # one address, whatever the names
MAX_FAILED_NAME = 50  # one name, from every address but those it signed in from
KNOWN_ADDRESSES = 5
BAD_LOGIN = "姓名或密码不对。"
NOT_ADMIN = "只有管理员、食堂和后勤人员可以登录控制台。"
SHORT_PASSWORD = "密码至少 8 位。"
NOT_SAME = "两次输入的新密码不一样。"
WRONG_CURRENT = "当前密码不对。"
PASSWORD_CHANGED = "密码已修改；其他设备上的登录已退出。"
LINK_BAD = "这个设置密码的链接已失效（已用过、已过期或已有新链接）。请向管理员要一个新链接。"
LINK_DONE = "密码已设置，请登录。"
LINK_HOURS = 48
_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
# where a sign-in may send the browser back to: a console path, nothing that leaves it or breaks a header
_NEXT = re.compile(r"/admin(?:/[^\x00-\x20\x7f\\]*)?")


def set_password(db: Session, person: Person, password: str) -> None:
    """Set (or change) a console password (admin, canteen, staff, bureau); a change signs out every
    browser of the account."""
    if not person.role_set & set(CONSOLE_ROLES):
        raise ValueError(NOT_ADMIN)
    if len(password) < 8:
        raise ValueError(SHORT_PASSWORD)
    account = db.get(ConsoleAccount, person.id)
    if account is None:
        db.add(ConsoleAccount(person_id=person.id, password_hash=generate_password_hash(password)))
    else:
        account.password_hash = generate_password_hash(password)
        db.flush()
        db.execute(revoke_sessions(person.id))


# -- signing in -----------------------------------------------------------------------------------
class _Key(NamedTuple):
    key: str
    limit: int


def _keys(name: str, address: str, known: bool) -> list[_Key]:
    """The counters an attempt at `name` from `address` is taken from (the module's docstring)."""
    def digest(*parts: str) -> str:
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]

    keys = [_Key(f"pair:{digest(name, address)}", MAX_FAILED), _Key(f"addr:{digest(address)}", MAX_FAILED_ADDRESS)]
    return keys if known else [*keys, _Key(f"name:{digest(name)}", MAX_FAILED_NAME)]


def _take(db: Session, key: _Key, now: datetime) -> bool:
    """Count one attempt under `key` unless it is at its limit in its window: one conditional UPDATE
    (or the INSERT of a new key), so two parallel attempts cannot both slip under the limit."""
    throttle = ConsoleLoginThrottle
    over = throttle.window_start <= now - WINDOW
    started = literal(now, throttle.window_start.type)
    bump = (update(throttle).where(throttle.key == key.key, or_(throttle.failures < key.limit, over))
            .values(failures=case((over, 1), else_=throttle.failures + 1),
                    window_start=case((over, started), else_=throttle.window_start))
            .returning(throttle.key).execution_options(synchronize_session=False))
    if db.execute(bump).first() is not None:
        return True
    insert = (_INSERTS[db.get_bind().dialect.name](throttle).values(key=key.key, failures=1, window_start=now)
              .on_conflict_do_nothing().returning(throttle.key))
    return db.execute(insert).first() is not None or db.execute(bump).first() is not None


def _give_back(db: Session, keys: list[_Key]) -> None:
    """A right password: its attempt does not count; the name-and-address count starts again."""
    throttle = ConsoleLoginThrottle
    pair, *others = (k.key for k in keys)
    db.execute(update(throttle).where(throttle.key == pair).values(failures=0))
    db.execute(update(throttle).where(throttle.key.in_(others), throttle.failures > 0)
               .values(failures=throttle.failures - 1))


# what an unknown name's password is checked against: werkzeug's default method with its default cost
# (the one `houqin console-password` uses), so the check takes as long as a real one; nothing matches it
DUMMY_HASH = f"scrypt:32768:8:1${'0' * 16}${'0' * 128}"


def _next_page() -> str:
    """?next= as a console path to go to after signing in; a 400 for anything else."""
    target = request.args.get("next", "")
    if target and not _NEXT.fullmatch(target):
        abort(400)
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = _next_page()
    if request.method == "GET":
        return render_template("admin/login.html", error="")
    name = request.form.get("name", "").strip()
    if _CONTROL.search(name):
        abort(400)
    error, status = _sign_in(name, request.form.get("password", ""), (request.remote_addr or "")[:64])
    if not error:
        return redirect(target or url_for("console.overview"))
    return render_template("admin/login.html", error=error), status


def _sign_in(name: str, password: str, address: str) -> tuple[str, int]:
    """Check a name and password (the module's docstring says how attempts are counted); on success
    the session is set up. Returns the error to show ("" for none) and the page's status."""
    now = base.services().now()
    with base.db() as db:
        db.begin()
        accounts = list(db.scalars(select(ConsoleAccount).join(Person).where(Person.name == name)
                                   .order_by(ConsoleAccount.person_id)))
        keys = _keys(name, address, known=any(address in a.known_addresses.split() for a in accounts))
        if not all(_take(db, key, now) for key in keys):
            db.rollback()  # nothing counted: this attempt checks no password
            return LOCKED, 429
        db.commit()  # counted before the password is checked (and whatever happens next)
        right = [a for a in accounts if check_password_hash(a.password_hash, password)]
        if not accounts:
            check_password_hash(DUMMY_HASH, password)
        if not right:
            with db.begin():  # counters whose window has passed count nothing: drop them
                db.execute(delete(ConsoleLoginThrottle).where(ConsoleLoginThrottle.window_start <= now - WINDOW))
            return BAD_LOGIN, 401
        with db.begin():
            _give_back(db, keys)
            account = db.get(ConsoleAccount, right[0].person_id, populate_existing=True)
            person = db.get(Person, right[0].person_id)
            if account is None or person is None or not person.role_set & set(CONSOLE_ROLES):
                return NOT_ADMIN, 403
            addresses = [address, *(a for a in account.known_addresses.split() if a != address)]
            account.known_addresses = " ".join(addresses[:KNOWN_ADDRESSES])
            session.clear()
            session.update(person_id=person.id, name=person.name, version=account.session_version,
                           seen=now.timestamp())
    return "", 200


@bp.post("/logout")
def logout() -> Response:
    """Signs this account out of every browser (退出所有设备: the session version moves on)."""
    person_id = session.get("person_id")
    if isinstance(person_id, int):
        with base.db() as db, db.begin():
            db.execute(revoke_sessions(person_id))
            record(db, actor(), "logout_all", actor(), at=base.services().now())
    session.clear()
    return redirect(url_for("console.login"))  # type: ignore[return-value]




# -- the account: 修改密码, 退出所有设备 ------------------------------------------------------------------
@bp.route("/account", methods=["GET", "POST"])
@requires()
def account() -> Any:
    error, done = "", ""
    if request.method == "POST":
        current, new, again = (request.form.get(k, "") for k in ("current", "new", "again"))
        with base.db() as db, db.begin():
            found = db.get(ConsoleAccount, g.person_id)
            person = db.get(Person, g.person_id)
            if found is None or person is None or not check_password_hash(found.password_hash, current):
                error = WRONG_CURRENT
            elif new != again:
                error = NOT_SAME
            else:
                try:
                    set_password(db, person, new)
                except ValueError as exc:
                    error = str(exc)
                else:
                    record(db, actor(), "password_changed", person.name, at=base.services().now())
                    db.flush()
                    db.refresh(found)
                    session["version"] = found.session_version
                    done = PASSWORD_CHANGED
    return render_template("admin/account.html", error=error, done=done), 400 if error else 200


# -- one-time links: the admin gives a person a link to set their own password ------------------------
def _fingerprint(account: ConsoleAccount | None) -> str:
    """Changes when the password does: a link made before a password was set works no more after it."""
    return hashlib.sha256((account.password_hash if account else "").encode()).hexdigest()[:16]


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="houqin-console-password-link")  # type: ignore[arg-type]


def password_link(db: Session, person: Person, now: datetime) -> str:
    """A signed link that lets `person` set a console password once, within LINK_HOURS."""
    if not person.role_set & set(CONSOLE_ROLES):
        raise ValueError(NOT_ADMIN)
    token = _serializer().dumps({"p": person.id, "f": _fingerprint(db.get(ConsoleAccount, person.id)),
                                 "e": int((now + timedelta(hours=LINK_HOURS)).timestamp())})
    return url_for("console.set_password_page", token=token, _external=True)


def _link_person(db: Session, token: str) -> Person | None:
    """The person a link is for, while it is good: signed by us, not expired, not used."""
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    if not (isinstance(data, dict) and isinstance(data.get("p"), int) and isinstance(data.get("e"), int)):
        return None
    person = db.get(Person, data["p"])
    if (person is None or data["e"] < base.services().now().timestamp()
            or data.get("f") != _fingerprint(db.get(ConsoleAccount, person.id))):
        return None
    return person


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password_page(token: str) -> Any:
    if len(token) > 400:
        abort(404)
    with base.db() as db, db.begin():
        person = _link_person(db, token)
        if person is None:
            return render_template("admin/set_password.html", error=LINK_BAD, person=None), 410
        error = ""
        if request.method == "POST":
            new, again = request.form.get("new", ""), request.form.get("again", "")
            if new != again:
                error = NOT_SAME
            else:
                try:
                    set_password(db, person, new)
                except ValueError as exc:
                    error = str(exc)
                else:
                    record(db, person.name, "console_password", person.name, "一次性链接",
                           at=base.services().now())
                    session.clear()
                    return render_template("admin/login.html", error="", notice=LINK_DONE)
        return render_template("admin/set_password.html", error=error, person=person), 400 if error else 200
