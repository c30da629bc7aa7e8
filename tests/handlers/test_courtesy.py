"""Courtesy through the webhook: 谢谢, 好的, 收到, 你好 get a short polite answer, not "没有听懂"."""

from __future__ import annotations

import pytest

from handlers.courtesy import HELLO_STRANGER, NOTED, WELCOME


@pytest.mark.parametrize(("typed", "answer"), [("谢谢", WELCOME), ("谢谢老师！", WELCOME), ("辛苦了🙏", WELCOME),
                                               ("好的", NOTED), ("收到", NOTED), ("收到！", NOTED), ("嗯嗯", NOTED),
                                               ("[抱拳]", WELCOME), ("谢谢[玫瑰]", WELCOME), ("[强][强]", NOTED),
                                               ("👍", NOTED), ("👌👌", NOTED), ("收到[OK]", NOTED)])
def test_thanks_and_nods_get_a_courteous_short_reply(wechat_user, people, typed, answer) -> None:
    people.add("张丽", "teacher")
    assert wechat_user("张丽").say(typed).text == answer


def test_hello_names_the_person_and_points_to_help(wechat_user, people) -> None:
    people.add("张丽", "teacher")
    hello = wechat_user("张丽").say("你好").text
    assert hello.startswith("你好，张丽！") and "「帮助」" in hello
    assert wechat_user("路人", bind=False).say("您好").text == HELLO_STRANGER


def test_courtesy_inside_a_sentence_is_not_taken_for_it(wechat_user, people) -> None:
    people.add("张丽", "teacher")
    assert "没有听懂" in wechat_user("张丽").say("好的天气适合出去玩吗").text
    assert "没有听懂" in wechat_user("张丽").say("😂").text  # an emoji that is no courtesy
