"""The month-of-a-big-school fixture (bench/big_school.py) builds what bench/console_pages.py measures: a
smaller, quieter school here (60 students, a tenth of the tickets, ratings and pushes), the same month; every console page the benchmark times answers on it,
and the ledgers export it."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import func, select

from bench.big_school import build_school
from bench.console_pages import downloads, pages
from bot.console import set_password
from bot.export import read_ledger
from models import Delivery, Person, RepairTicket
from tests.test_console import PASSWORD, sign_in

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 30 November 16:00 school time


def test_a_month_of_a_school_and_every_console_page_on_it(services, client: FlaskClient, clock) -> None:
    clock.set("2026-11-30 16:00")
    with services.factory() as db, db.begin():
        counts = build_school(db, NOW, students=60, busy=0.1)
        admin = db.scalar(select(Person).where(Person.name == "周春明"))
        set_password(db, admin, PASSWORD)
    assert counts["students"] == 60 and counts["parents"] == 60 and counts["teachers"] == 120
    assert counts["days"] == 21  # November 2026's school days up to Monday the 30th
    assert counts["tickets"] == 3 * 21 and counts["feedback"] == 15 * 21
    with services.factory() as db:
        assert db.scalar(select(func.count()).select_from(RepairTicket)) >= counts["tickets"]
        assert db.scalar(select(func.count()).select_from(Delivery)) == counts["deliveries"] == 21 * (60 + 4)

    sign_in(client)
    for name, path in pages(services) + downloads():
        res = client.get(path)
        assert res.status_code == 200, (name, path, res.get_data(as_text=True)[:300])
    tickets = read_ledger(io.BytesIO(client.get("/admin/ledgers/repairs.xlsx?month=2026-11").data), "报修台账")
    assert len(tickets) == 1 + counts["tickets"]
