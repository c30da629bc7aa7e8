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
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import select

from bot.inbox import APOLOGY
from bot.services import Services
from bot.wechat.simulator import WeChatUser
from handlers.identity import issue_code
from models import CanteenFeedback, InboundMessage, Person, RepairTicket, SurveyResponse

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
    with services.factory() as s:
        rows = list(s.scalars(select(CanteenFeedback).order_by(CanteenFeedback.number)))
    one_of_two_counts(replies, "谢谢评价！", "之前的评价", rows)


def one_of_two_counts(replies: list[str], done: str, earlier: str, rows: list[CanteenFeedback] | list[SurveyResponse]
                      ) -> None:
    """One person's "汤太咸" and "米饭不错" sent at once: both answered and kept; whichever came second
    saw the first (its reply says `earlier`), and only its score counts."""
    assert all(r.startswith(done) for r in replies), replies
    assert sum(earlier in r for r in replies) == 1
    assert sorted(r.comment for r in rows) == ["汤太咸", "米饭不错"]
    assert [r.counted for r in rows] == [False, True] and rows[0].superseded_by_id == rows[1].id


def test_one_persons_two_survey_answers_at_once_are_both_kept_and_one_counts(
        app: Flask, people, wechat_user: Callable[..., WeChatUser], clock, runner, services: Services) -> None:
    """A parent on two WeChats answers the monthly survey from both at once: the person's row is locked
    while an answer is saved, so whichever comes second supersedes the first's score."""
    clock.set("2026-11-20 16:00")
    people.add("陈建国", "parent")
    first = wechat_user("陈建国")
    with services.factory() as s, s.begin():  # a code for his second WeChat
        issue_code(s, services.now(), person=s.scalar(select(Person).where(Person.name == "陈建国")))
    phones = [first, wechat_user("陈建国", openid="o" + "2" * 27)]
    pushed = runner.run_now("push_canteen_survey", datetime(2026, 11, 20, 8, 30, tzinfo=UTC)).result
    assert pushed == "已推送月度调查给 1 人（2 个微信可直接回复作答）"
    clock.set("2026-11-20 17:00")
    replies = at_once(app, phones, ["2 汤太咸", "4 米饭不错"])
    with services.factory() as s:
        rows = list(s.scalars(select(SurveyResponse).order_by(SurveyResponse.id)))
    one_of_two_counts(replies, "谢谢参与11月食堂满意度调查！", "之前的评分仍保留", rows)
