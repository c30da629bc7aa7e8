"""Each official account's daily template quota: the worker counts template sends per appid per account
day (Beijing time), defers those past HOUQIN_TEMPLATE_DAILY_QUOTA to the next day without spending an
attempt, treats WeChat's 45009 on a template send the same way, and says so in `houqin outbox` and /healthz."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.outbox import Outbox
from bot.services import Services
from bot.wechat.templates import Template
from bot.worker import QUOTA_DEFERRED, QUOTA_REACHED, account_day
from models import Delivery, Person, TemplateQuota
from models.outbox import PENDING, SENT

NOTICE_TEMPLATE = Template("TPL_NOTICE", {"thing1": "{title}", "time2": "{time}"})
TEMPLATE = "message/template/send"
NAMES = [f"老师{i}" for i in range(5)]
# 2026-11-25 00:01 in Beijing
TOMORROW = datetime(2026, 11, 24, 16, 1, tzinfo=UTC)


def with_settings(**overrides: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings", [overrides], indirect=True, ids=["settings"])


@pytest.fixture
def settings(request: pytest.FixtureRequest, settings):  # type: ignore[no-untyped-def]
    return settings.with_overrides(**getattr(request, "param", {}))


@pytest.fixture
def teachers(services, people, wechat_user, clock) -> list[str]:
    clock.set("2026-11-24 10:00")
    for name in NAMES:
        people.add(name, "teacher")
        wechat_user(name)
    return NAMES


def queue_notice(services: Services, text: str) -> None:
    with services.factory() as s, s.begin():
        people = list(s.scalars(select(Person).where(Person.name.in_(NAMES))))
        Outbox(s, services.settings, services.now()).notify(people, "notice", text)


def deliveries(services: Services) -> list[Delivery]:
    with services.factory() as s:
        return list(s.scalars(select(Delivery).order_by(Delivery.id)).unique())


def quota_row(services: Services) -> TemplateQuota | None:
    with services.factory() as s:
        return s.get(TemplateQuota, (services.settings.wechat_appid, account_day(services.now())))


def template_calls(fake_wechat: Any) -> list[Any]:
    return [c for c in fake_wechat.calls if c.endpoint == TEMPLATE]


@with_settings(templates={"notice": NOTICE_TEMPLATE}, template_daily_quota=3)
def test_sends_past_the_quota_wait_for_the_next_day(services, teachers, fake_wechat, deliver, clock, houqin,
                                                     client, monkeypatch) -> None:
    monkeypatch.setenv("HOUQIN_TEMPLATE_DAILY_QUOTA", "3")  # the operator's `houqin outbox` has it too
    queue_notice(services, "明天上午八点全校大扫除")
    deliver()
    rows = deliveries(services)
    assert [r.status for r in rows].count(SENT) == 3 and len(template_calls(fake_wechat)) == 3
    waiting = [r for r in rows if r.status == PENDING]
    assert len(waiting) == 2
    assert all(r.next_attempt_at == TOMORROW and r.attempts == 0 for r in waiting), waiting
    assert all(r.last_error == QUOTA_DEFERRED.format(quota=3, when="11月25日 00:01") for r in waiting)
    row = quota_row(services)
    assert row is not None and (row.sent, row.deferred, row.exhausted_at) == (3, 2, None)

    listing = houqin("outbox")
    assert listing.exit_code == 0, listing.output
    assert f"公众号 {services.settings.wechat_appid} 今日（2026-11-24）模板消息：已用 3/3 条，2 条已顺延至次日" in listing.output
    health = client.get("/healthz").get_json()
    assert (health["template_sends"], health["template_quota"], health["quota_deferred"]) == (3, 3, 2)

    deliver()  # still today: nothing more goes, nothing is spent
    assert len(template_calls(fake_wechat)) == 3

    clock.set("2026-11-25 00:05")
    deliver()
    assert {r.status for r in deliveries(services)} == {SENT}
    assert len({c.openid for c in template_calls(fake_wechat)}) == 5 and len(template_calls(fake_wechat)) == 5
    row = quota_row(services)
    assert row is not None and (row.sent, row.deferred) == (2, 0)
    assert "quota_deferred" not in client.get("/healthz").get_json()


@with_settings(templates={"notice": NOTICE_TEMPLATE})
def test_wechat_answering_45009_defers_instead_of_failing(services, teachers, fake_wechat, deliver, clock,
                                                          houqin) -> None:
    services.api.token()
    fake_wechat.state.template_quota = 2  # WeChat's own count says the account has 2 left today
    queue_notice(services, "周五下午家长会")
    deliver()
    rows = deliveries(services)
    sent = [r for r in rows if r.status == SENT]
    waiting = [r for r in rows if r.status == PENDING]
    assert len(sent) == 2 and len(waiting) == 3, [(r.status, r.last_error) for r in rows]
    assert all(r.next_attempt_at == TOMORROW and r.attempts == 0 for r in waiting)
    answered = [r for r in waiting if r.last_error == QUOTA_REACHED.format(when="11月25日 00:01")]
    assert answered, [r.last_error for r in waiting]  # the one(s) WeChat refused; the rest were not tried
    refused = [c for c in template_calls(fake_wechat) if c.errcode == 45009]
    assert len(refused) == len(answered)
    row = quota_row(services)
    assert row is not None and row.exhausted_at is not None
    assert "微信已答复达到上限（45009）" in houqin("outbox").output

    calls = len(template_calls(fake_wechat))
    deliver()  # the account is spent for today: no call at all
    assert len(template_calls(fake_wechat)) == calls

    fake_wechat.state.template_counts.clear()  # WeChat's day turned over too: the account has its full quota
    fake_wechat.state.template_quota = 0
    clock.set("2026-11-25 07:30")
    deliver()
    assert {r.status for r in deliveries(services)} == {SENT}
    assert sorted(c.openid for c in fake_wechat.sent() if c.endpoint == TEMPLATE) == sorted(
        r.openid for r in deliveries(services))
