"""The database's two kinds of work: writers (the webhook, workers, jobs) take the SQLite writer lock
at BEGIN; read-only work (exports, console pages, the menu and push pages) reads a snapshot and never
holds a writer up, nor waits for one."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.export import read_ledger
from bot.services import Services
from models import Person, RepairTicket

PASSWORD = "后勤2026secret"


@pytest.fixture
def filed(people, wechat_user, houqin, clock):
    """An admin with a console password, a teacher and R1 filed through the webhook."""
    clock.set("2026-11-20 08:00")
    people.add("周春明", "admin")
    people.add("殷奇", "staff", categories="电教")
    people.add("张丽", "teacher")
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    assert "R1" in wechat_user("张丽").say("报修 三(2)班 投影仪不亮").text
    return people


def tickets(services: Services) -> int:
    with services.factory() as s:
        return int(s.scalar(select(func.count()).select_from(RepairTicket)) or 0)


def test_a_long_read_leaves_the_webhook_free_to_write(filed, services: Services, wechat_user) -> None:
    """An export's transaction is open (it has read, it has not finished): the webhook files a ticket
    and commits meanwhile, within its one-second wait, instead of answering 系统繁忙."""
    with services.read_factory() as export:
        assert export.scalar(select(func.count()).select_from(RepairTicket)) == 1
        reply = wechat_user("张丽").say("报修 三(2)班 窗户关不上")
        assert "已提交报修 R2" in reply.text, reply.text
        assert tickets(services) == 2  # committed while the read was still open


def test_writers_still_take_the_lock_when_they_begin(services: Services, backend) -> None:
    if backend.name != "sqlite":
        pytest.skip("the writer lock is SQLite's; PostgreSQL locks rows, not the database")
    impatient = services.db_engine.execution_options(houqin_write_wait=0.1)
    with services.factory() as first, first.begin():
        first.connection()  # BEGIN: nothing written yet, the lock is taken already
        with pytest.raises(OperationalError, match="database is locked"), impatient.connect() as second:
            second.execute(select(1))
        with services.read_factory() as reader:  # a reader is not kept waiting
            assert reader.scalar(select(func.count()).select_from(Person)) == 0


def test_read_only_sessions_refuse_writes(services: Services) -> None:
    with services.read_factory() as s, pytest.raises(DBAPIError, match="(?i)read.?only"):
        s.add(Person(name="不该写入"))
        s.flush()
    with services.factory() as s:
        assert s.scalar(select(Person).where(Person.name == "不该写入")) is None
        # the connection went back to the pool read-only; the next writer may write on it
    with services.factory() as s, s.begin():
        s.add(Person(name="可以写入"))
    with services.read_factory() as s:
        assert s.scalar(select(Person.name).where(Person.name == "可以写入")) == "可以写入"


def test_pages_and_exports_answer_while_a_writer_holds_its_transaction(filed, services: Services,
                                                                       client: FlaskClient, houqin,
                                                                       tmp_path) -> None:
    """A writer mid-transaction (on SQLite it holds the writer lock) does not hold up the console, the
    menu page or an export: each reads the last committed state."""
    from tests.test_console import sign_in

    assert sign_in(client).endswith("/admin/")
    out = tmp_path / "repairs.xlsx"
    with services.factory() as writer, writer.begin():
        writer.add(Person(name="未提交的人"))
        writer.flush()
        for path in ("/admin/", "/admin/repairs", "/admin/repairs/R1", "/admin/outbox", "/admin/people",
                     "/admin/assets", "/admin/canteen"):
            res = client.get(path)
            assert res.status_code == 200, path
            assert "未提交的人" not in res.get_data(as_text=True)
        assert client.get("/menu/2026-W48").status_code == 404  # no menu published: answered, not stalled
        exported = houqin("export", "repairs", "--month", "2026-11", "--out", str(out))
        assert exported.exit_code == 0, exported.output
    rows = list(read_ledger(out, "报修台账"))
    assert len(rows) == 2 and "投影仪不亮" in " ".join(str(c) for c in rows[1])
