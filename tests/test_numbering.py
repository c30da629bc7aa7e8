"""Numbers (R<n>, F<n>) are handed out without conflicts: senders filing at the same moment, each
through a client of their own in a thread of their own, all get a ticket or feedback number of their
own, a real reply, and no message of theirs is left failed.

On PostgreSQL the requests really overlap (the race that lost tickets to unique violations). On
SQLite the same test runs too, but the writers queue one after another (SQLite serializes writes),
so there it checks only that queued writers get distinct numbers."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from flask import Flask
from sqlalchemy import select

from bot.inbox import APOLOGY
from bot.services import Services
from bot.simulator import WeChatUser
from models import CanteenFeedback, InboundMessage, RepairTicket

TEACHERS = ["张丽", "王强", "李娜", "赵敏"]
PARENTS = ["陈建国", "刘芳", "周杰", "吴霞"]
ROUNDS = 2  # each round: every teacher files a repair while every parent rates the canteen
WAIT_SECONDS = 60  # a bound, not a timing: a thread stuck this long fails the test


def at_once(app: Flask, users: list[WeChatUser], texts: list[str]) -> list[str]:
    """Each user says their text in a thread of their own through a Flask client of their own, all
    released together; returns the replies in the users' order."""
    start = threading.Barrier(len(users))
    replies: list[str] = [""] * len(users)
    errors: list[BaseException] = []

    def send(index: int) -> None:
        client = app.test_client()

        def post(url: str, body: bytes) -> tuple[int, bytes]:
            res = client.post(url, data=body, content_type="text/xml")
            return res.status_code, res.data

        user = users[index]
        mine = WeChatUser(user.openid, token=user.token, appid=app.extensions["houqin"].settings.wechat_appid,
                          aes_key=app.extensions["houqin"].settings.wechat_aes_key, transport=post, mode=user.mode)
        try:
            start.wait(timeout=WAIT_SECONDS)
            replies[index] = mine.say(texts[index]).text
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_SECONDS)
    assert not any(t.is_alive() for t in threads), "a sender is still waiting for its reply"
    assert errors == []
    return replies


def test_simultaneous_repairs_and_ratings_get_distinct_numbers_and_real_replies(
        app: Flask, people, wechat_user: Callable[..., WeChatUser], clock, services: Services) -> None:
    clock.set("2026-11-24 12:10")  # a Tuesday lunchtime
    people.add("周春明", "admin")
    for name in TEACHERS:
        people.add(name, "teacher")
    for name in PARENTS:
        people.add(name, "parent")
    users = [wechat_user(name) for name in TEACHERS + PARENTS]

    replies = []
    for round_ in range(ROUNDS):
        texts = [f"报修 {round_ + 1}号楼{i + 1}0{i + 1}室 窗户关不上" for i in range(len(TEACHERS))]
        texts += [f"食堂 {i + 2} 第{round_ + 1}次评价" for i in range(len(PARENTS))]
        replies += at_once(app, users, texts)

    assert not [r for r in replies if r == APOLOGY]
    filed = [r for r in replies if r.startswith("已提交报修 R")]
    rated = [r for r in replies if r.startswith("谢谢评价！")]
    assert (len(filed), len(rated)) == (ROUNDS * len(TEACHERS), ROUNDS * len(PARENTS)), replies
    with services.factory() as s:
        tickets = sorted(s.scalars(select(RepairTicket.number)))
        feedback = sorted(s.scalars(select(CanteenFeedback.number)))
        statuses = set(s.scalars(select(InboundMessage.status)))
    assert tickets == list(range(1, ROUNDS * len(TEACHERS) + 1))
    assert feedback == list(range(1, ROUNDS * len(PARENTS) + 1))
    assert statuses == {"handled"}
    # each sender was told the number their ticket or feedback got
    assert sorted(int(m) for r in filed for m in re.findall(r"^已提交报修 R(\d+)：", r)) == tickets
    assert sorted(int(m) for r in rated for m in re.findall(r"编号 F(\d+)。", r)) == feedback


def test_one_persons_two_ratings_at_once_are_both_kept_and_one_score_counts(
        app: Flask, people, wechat_user: Callable[..., WeChatUser], clock, services: Services) -> None:
    clock.set("2026-11-24 12:10")
    people.add("陈建国", "parent")
    parent = wechat_user("陈建国")
    replies = at_once(app, [parent, parent], ["食堂 2 汤太咸", "食堂 4 米饭不错"])
    assert all(r.startswith("谢谢评价！") for r in replies), replies
    assert sum("之前的评价" in r for r in replies) == 1  # whichever came second saw the first
    with services.factory() as s:
        rows = list(s.scalars(select(CanteenFeedback).order_by(CanteenFeedback.number)))
    assert sorted(r.comment for r in rows) == ["汤太咸", "米饭不错"]
    assert [r.counted for r in rows] == [False, True] and rows[0].superseded_by_id == rows[1].id
