"""`houqin outbox [--status STATUS]` and `houqin outbox retry ID`, run as an operator would:
the command configured by environment variables, against the test database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.outbox import Outbox
from bot.services import Services
from models import Delivery, Person
from models.outbox import FAILED, PENDING, SENT, UNDELIVERABLE

CUSTOM = "message/custom/send"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(push_max_attempts=2)


def queue(services: Services, name: str, text: str) -> int:
    with services.factory() as s, s.begin():
        person = s.scalar(select(Person).where(Person.name == name))
        push = Outbox(s, services.settings, services.now()).notify(person, "notice", text).push
        assert push is not None
        s.flush()
        return push.deliveries[0].id


def delivery(services: Services, delivery_id: int) -> Delivery:
    with services.factory() as s:
        row = s.get(Delivery, delivery_id)
        assert row is not None
        return row


def line_of(output: str, needle: str) -> str:
    lines = [line for line in output.splitlines() if needle in line]
    assert len(lines) == 1, output
    return lines[0]


def test_outbox_lists_state_and_last_error_and_retry_requeues(services, people, wechat_user, fake_wechat,
                                                             deliver, clock, houqin):
    clock.set("2026-11-23 10:00")
    people.add("张丽", "teacher")
    people.add("王五", "teacher")
    wechat_user("张丽")
    sent = queue(services, "张丽", "推送甲")
    deliver()
    fake_wechat.script(CUSTOM, 45009, 45009)
    failed = queue(services, "张丽", "推送乙")
    deliver()
    nobody = queue(services, "王五", "推送丙")
    assert (delivery(services, sent).status, delivery(services, failed).status) == (SENT, FAILED)

    listing = houqin("outbox")
    assert listing.exit_code == 0, listing.output
    row = line_of(listing.output, "推送甲")
    assert str(sent) in row and SENT in row and "张丽" in row
    row = line_of(listing.output, "推送乙")
    assert str(failed) in row and FAILED in row and "45009" in row
    row = line_of(listing.output, "推送丙")
    assert str(nobody) in row and UNDELIVERABLE in row and "未绑定微信" in row

    only_failed = houqin("outbox", "--status", FAILED)
    assert only_failed.exit_code == 0, only_failed.output
    assert "推送乙" in only_failed.output
    assert "推送甲" not in only_failed.output and "推送丙" not in only_failed.output
    assert houqin("outbox", "--status", "lost").exit_code == 2

    retried = houqin("outbox", "retry", str(failed))
    assert retried.exit_code == 0, retried.output
    row_after = delivery(services, failed)
    assert (row_after.status, row_after.attempts, row_after.last_error) == (PENDING, 0, None)
    assert (row_after.claim, row_after.lease_until) == (None, None)  # bot.outbox.requeue, as the console's 重发
    assert "推送乙" in houqin("outbox", "--status", PENDING).output

    deliver()
    assert delivery(services, failed).status == SENT
    assert [c.text for c in fake_wechat.sent_to("张丽")] == ["推送甲", "推送乙"]
    assert "推送乙" in houqin("outbox", "--status", SENT).output


def test_outbox_retry_refuses_what_cannot_be_retried(services, people, houqin):
    people.add("王五", "teacher")
    nobody = queue(services, "王五", "没有微信")

    missing = houqin("outbox", "retry", "999999")
    assert missing.exit_code == 1 and "999999" in missing.output

    unbound = houqin("outbox", "retry", str(nobody))
    assert unbound.exit_code == 1
    assert delivery(services, nobody).status == UNDELIVERABLE
