"""Binding, unbinding, 我, following and unfollowing — all through the real webhook."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from bot.outbox import Outbox
from models import BindAttempt, BindCode, Binding, ParentLink, Person, Student

WRONG = "AAAAA0"  # 0 is not in the code alphabet, so no issued code can be this


def full_width(text: str) -> str:
    """ASCII letters, digits and punctuation as their full-width forms, spaces as ideographic spaces."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def binding_of(services, user) -> Binding | None:
    with services.factory() as s:
        return s.get(Binding, user.openid)


def person_id_of(services, name: str) -> int:
    with services.factory() as s:
        person_id = s.scalar(select(Person.id).where(Person.name == name))
        assert person_id is not None
        return person_id


def notify(services, name: str, text: str) -> None:
    """Queue a push to a person, as a handler or job would, and commit it."""
    with services.factory() as s, s.begin():
        person = s.scalar(select(Person).where(Person.name == name))
        Outbox(s, services.settings, services.now()).notify(person, "test_push", text)


# -- binding with a person code -----------------------------------------------------------------
def test_bind_with_good_code_names_person_and_roles(wechat_user, people, services):
    people.add("王芳", "teacher", "bus_monitor")
    code = people.code_of("王芳")
    user = wechat_user("王芳", bind=False)

    reply = user.say(f"绑定 {code}")

    assert "绑定成功" in reply.text
    assert "王芳" in reply.text and "教师" in reply.text and "跟车老师" in reply.text
    row = binding_of(services, user)
    assert row is not None and row.person_id == person_id_of(services, "王芳")
    me = user.say("我").text
    assert "王芳" in me and "教师" in me and "跟车老师" in me


def test_person_code_cannot_be_reused_by_a_second_user(wechat_user, people, services):
    people.add("王芳", "teacher")
    people.add("赵强", "staff")
    code = people.code_of("王芳")
    wechat_user("王芳")  # binds with the code
    intruder = wechat_user("冒名者", bind=False)

    reply = intruder.say(f"绑定 {code}")
    unknown = intruder.say(f"绑定 {WRONG}")

    # answered exactly like a code never issued, so that guessing cannot tell a used code from no code
    assert reply.text == unknown.text.replace(WRONG, code) and "无效" in reply.text
    teacher = wechat_user("赵强")  # bound, with a code of their own: someone else's used code is unknown too
    assert teacher.say(f"绑定 {code}").text == teacher.say(f"绑定 {WRONG}").text.replace(WRONG, code)
    assert "你已绑定为王芳" in wechat_user.made["王芳"].say(f"绑定 {code}").text  # its own user is told
    assert "还没有绑定" in intruder.say("我").text
    with services.factory() as s:
        bound = s.scalars(select(Binding.openid).where(Binding.person_id == person_id_of(services, "王芳"))).all()
    assert bound == [wechat_user.made["王芳"].openid]


def test_wrong_code_is_answered_and_binds_nothing(wechat_user, services):
    user = wechat_user("路人", bind=False)

    reply = user.say(f"绑定 {WRONG}")

    assert "无效" in reply.text and WRONG in reply.text
    assert "还没有绑定" in user.say("我").text
    row = binding_of(services, user)
    assert row is None or row.person_id is None


def test_bare_bind_asks_for_the_code(wechat_user):
    reply = wechat_user("路人", bind=False).say("绑定")
    assert "绑定码" in reply.text and "绑定成功" not in reply.text


def test_expired_code_is_refused_but_a_13_day_old_one_works(wechat_user, people, clock):
    clock.set("2026-11-23 08:00")
    people.add("王芳", "teacher")
    people.add("赵强", "staff")
    late = wechat_user("王芳", bind=False)
    in_time = wechat_user("赵强", bind=False)

    clock.advance(days=13)
    assert "绑定成功" in in_time.say(f"绑定 {people.code_of('赵强')}").text
    clock.advance(days=2)
    reply = late.say(f"绑定 {people.code_of('王芳')}")

    assert "过期" in reply.text and "绑定成功" not in reply.text
    assert "还没有绑定" in late.say("我").text


def test_bind_accepts_glued_lower_case_and_spaced_forms(wechat_user, people):
    forms = {
        "甲老师": lambda code: f"绑定{code}",  # glued: 绑定ABC234
        "乙老师": lambda code: f"绑定 {code.lower()}",  # lower case
        "丙老师": lambda code: f"绑定{code.lower()}",  # glued and lower case
        "丁老师": lambda code: f"  绑定 \u3000 {code}  ",  # runs of half- and full-width spaces
        "戊老师": lambda code: f"BIND {code}",  # the English keyword, any case
    }
    forms |= {
        "己老师": lambda code: f"绑定：{code}",  # a full-width colon
        "庚老师": lambda code: f"绑定 {code[:3]} {code[3:]}",  # split in two
    }
    for name, form in forms.items():
        people.add(name, "teacher")
        user = wechat_user(name, bind=False)
        text = form(people.code_of(name))
        reply = user.say(text)
        assert "绑定成功" in reply.text and name in reply.text, (text, reply.text)
        assert name in user.say("我").text


def test_full_width_input_is_normalised(wechat_user, people):
    people.add("王芳", "teacher")
    code = people.code_of("王芳")
    user = wechat_user("王芳", bind=False)

    sent = "绑定\u3000" + full_width(code)  # e.g. 绑定　ＡＢＣ２３４
    assert sent != f"绑定 {code}"
    assert "绑定成功" in user.say(sent).text


# -- lockout ------------------------------------------------------------------------------------
def test_five_wrong_codes_lock_the_sender_out_for_ten_minutes(wechat_user, people, services, clock):
    clock.set("2026-11-23 08:00")
    people.add("王芳", "teacher")
    people.add("赵强", "staff")
    code = people.code_of("王芳")
    guesser = wechat_user("王芳", bind=False)

    for i in range(5):  # wrong codes at 08:00, 08:01, ... 08:04
        if i:
            clock.advance(minutes=1)
        reply = guesser.say(f"绑定 {WRONG}")
        assert "无效" in reply.text, (i, reply.text)
    sixth = guesser.say(f"绑定 {code}")  # the right code, but locked out

    assert "过多" in sixth.text and "10分钟" in sixth.text and "绑定成功" not in sixth.text
    assert "还没有绑定" in guesser.say("我").text
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(BindAttempt)
                        .where(BindAttempt.openid == guesser.openid)) == 5  # refusals are not attempts

    # the lockout is per sender: someone else binds meanwhile
    assert "赵强" in wechat_user("赵强").say("我").text  # wechat_user binds and checks 绑定成功

    clock.advance(minutes=9, seconds=59)  # 08:13:59, though the first wrong code is 13 minutes old
    late = guesser.say(f"绑定 {code}").text
    assert "过多" in late and "1分钟" in late
    clock.advance(seconds=1)  # 08:14, ten minutes after the fifth wrong code
    reply = guesser.say(f"绑定 {code}")
    assert "绑定成功" in reply.text and "王芳" in reply.text


def test_after_a_lockout_the_sender_gets_five_tries_again(wechat_user, people, clock):
    clock.set("2026-11-23 08:00")
    people.add("王芳", "teacher")
    user = wechat_user("王芳", bind=False)
    for _ in range(5):
        user.say(f"绑定 {WRONG}")
    clock.advance(minutes=10)
    replies = [user.say(f"绑定 {WRONG}").text for _ in range(5)]
    assert all("无效" in r for r in replies), replies
    assert "过多" in user.say(f"绑定 {people.code_of('王芳')}").text


def test_wrong_codes_spread_over_more_than_ten_minutes_do_not_lock(wechat_user, people, clock):
    clock.set("2026-11-23 08:00")
    people.add("王芳", "teacher")
    user = wechat_user("王芳", bind=False)

    for _ in range(4):
        assert "无效" in user.say(f"绑定 {WRONG}").text
    clock.advance(minutes=11)
    for _ in range(4):
        assert "无效" in user.say(f"绑定 {WRONG}").text

    assert "绑定成功" in user.say(f"绑定 {people.code_of('王芳')}").text


def test_fifth_wrong_code_is_still_answered_as_wrong(wechat_user, clock):
    clock.set("2026-11-23 08:00")
    user = wechat_user("路人", bind=False)
    replies = [user.say(f"绑定 {WRONG}").text for _ in range(6)]
    assert all("无效" in r for r in replies[:5]), replies
    assert "过多" in replies[5]


# -- parent codes -------------------------------------------------------------------------------
def test_two_parents_bind_to_one_student_and_one_parent_to_two(wechat_user, people, services):
    people.student("陈小明", "三(2)班", route="1")
    people.student("陈小红", "一(1)班")
    mum = wechat_user("妈妈", bind=False)
    dad = wechat_user("爸爸", bind=False)

    first = mum.say(f"绑定 {people.code_of('陈小明')}").text
    second = dad.say(f"绑定 {people.code_of('陈小明')}").text
    third = mum.say(f"绑定 {people.code_of('陈小红')}").text

    assert "绑定成功" in first and "陈小明" in first and "三(2)班" in first
    assert "绑定成功" in second and "陈小明" in second
    assert "绑定成功" in third and "陈小红" in third
    mum_me, dad_me = mum.say("我").text, dad.say("我").text
    assert "家长" in mum_me and "陈小明" in mum_me and "陈小红" in mum_me
    assert "家长" in dad_me and "陈小明" in dad_me and "陈小红" not in dad_me
    with services.factory() as s:
        xiaoming = s.scalar(select(Student).where(Student.name == "陈小明"))
        assert xiaoming is not None
        parents = {link.person_id for link in xiaoming.parents}
        mum_person = s.get(Binding, mum.openid).person_id
        dad_person = s.get(Binding, dad.openid).person_id
        assert parents == {mum_person, dad_person} and mum_person != dad_person
        assert s.scalar(select(func.count()).select_from(ParentLink)
                        .where(ParentLink.person_id == mum_person)) == 2


def test_three_parents_and_a_repeated_parent_code(wechat_user, people):
    people.student("陈小明", "三(2)班")
    code = people.code_of("陈小明")
    users = [wechat_user(f"家长{i}", bind=False) for i in range(3)]
    for user in users:
        assert "绑定成功" in user.say(f"绑定 {code}").text
    again = users[0].say(f"绑定 {code}").text
    assert "无需重复" in again and "陈小明" in again


def test_teacher_who_is_also_a_parent_keeps_both_roles(wechat_user, people):
    people.add("王芳", "teacher")
    people.student("陈小明", "三(2)班")
    user = wechat_user("王芳")

    assert "绑定成功" in user.say(f"绑定 {people.code_of('陈小明')}").text
    me = user.say("whoami").text
    assert "王芳" in me and "教师" in me and "家长" in me and "陈小明" in me


def test_expired_parent_code_is_refused(wechat_user, people, clock):
    clock.set("2026-11-23 08:00")
    people.student("陈小明", "三(2)班")
    clock.advance(days=15)
    reply = wechat_user("妈妈", bind=False).say(f"绑定 {people.code_of('陈小明')}")
    assert "过期" in reply.text


# -- 我 and 解绑 ----------------------------------------------------------------------------------
def test_whoami_shows_name_roles_and_students(wechat_user, people):
    people.add("周春明", "admin", "staff", categories="水电;门窗")
    people.student("陈小明", "三(2)班", route="1")
    user = wechat_user("周春明")
    user.say(f"绑定 {people.code_of('陈小明')}")

    for word in ("我", "whoami", "ＷＨＯＡＭＩ"):
        me = user.say(word).text
        assert "周春明" in me and "管理员" in me and "后勤" in me and "家长" in me, (word, me)
        assert "陈小明" in me and "三(2)班" in me and "水电" in me


def test_whoami_unbound_says_how_to_bind(wechat_user):
    reply = wechat_user("路人", bind=False).say("我")
    assert "还没有绑定" in reply.text and "绑定" in reply.text


def test_unbind_ends_the_binding_and_pushes(wechat_user, people, services, deliver, fake_wechat):
    people.add("王芳", "teacher")
    user = wechat_user("王芳")

    asked = user.say("解绑")
    assert "确认解绑" in asked.text and "王芳" in asked.text and "已解绑" not in asked.text
    reply = user.say("确认解绑")

    assert "已解绑" in reply.text and "王芳" in reply.text
    assert "还没有绑定" in user.say("我").text
    row = binding_of(services, user)
    assert row is not None and row.person_id is None
    with services.factory() as s:
        assert s.scalar(select(Person).where(Person.name == "王芳")) is not None  # the person is kept
    notify(services, "王芳", "解绑之后的推送")
    deliver()
    assert fake_wechat.sent_to("王芳") == []
    assert "还没有绑定" in user.say("解绑").text


# -- following ----------------------------------------------------------------------------------
def test_subscribe_without_scene_welcomes_and_explains_binding(wechat_user, services):
    user = wechat_user("新关注", bind=False)
    reply = user.subscribe()
    assert "欢迎" in reply.text and "绑定" in reply.text and "绑定码" in reply.text
    row = binding_of(services, user)
    assert row is not None and row.subscribed and row.person_id is None


def test_subscribe_with_bind_scene_binds(wechat_user, people, services):
    people.add("王芳", "teacher")
    user = wechat_user("王芳", bind=False)

    reply = user.subscribe(f"bind:{people.code_of('王芳')}")

    assert "欢迎" in reply.text and "绑定成功" in reply.text and "王芳" in reply.text
    assert binding_of(services, user).person_id == person_id_of(services, "王芳")


def test_subscribe_with_a_bad_bind_scene_still_welcomes(wechat_user):
    reply = wechat_user("新关注", bind=False).subscribe(f"bind:{WRONG}")
    assert "欢迎" in reply.text and "无效" in reply.text


def test_scan_with_bind_scene_binds(wechat_user, people, services):
    people.add("王芳", "teacher")
    people.student("陈小明", "三(2)班")
    user = wechat_user("王芳", bind=False)
    parent = wechat_user("妈妈", bind=False)

    reply = user.scan(f"bind:{people.code_of('王芳').lower()}")
    parent_reply = parent.scan(f"bind:{people.code_of('陈小明')}")

    assert "绑定成功" in reply.text and "王芳" in reply.text and "教师" in reply.text
    assert binding_of(services, user).person_id == person_id_of(services, "王芳")
    assert "绑定成功" in parent_reply.text and "陈小明" in parent_reply.text


def test_unsubscribe_stops_pushes_and_keeps_data(wechat_user, people, services, deliver, fake_wechat):
    people.add("王芳", "teacher")
    user = wechat_user("王芳")
    notify(services, "王芳", "关注时的推送")
    deliver()
    assert [c.text for c in fake_wechat.sent_to("王芳")] == ["关注时的推送"]  # the pipeline works

    notify(services, "王芳", "取关前排队的推送")
    reply = user.event("unsubscribe")
    notify(services, "王芳", "取关后的推送")
    deliver()

    assert reply.status == 200
    assert [c.text for c in fake_wechat.sent_to("王芳")] == ["关注时的推送"]
    row = binding_of(services, user)
    assert row is not None and row.subscribed is False
    assert row.person_id == person_id_of(services, "王芳")  # data is kept

    # following again restores pushes and greets them by name
    back = user.event("subscribe", "", CreateTime=int(time.time()) + 1)
    assert "欢迎回来" in back.text and "王芳" in back.text
    assert binding_of(services, user).subscribed is True


# -- the global limit on wrong codes ------------------------------------------------------------------
GUESSERS = 10  # each makes the 5 wrong codes their own lockout allows: 50, the global limit


def guess_from_many(wechat_user, count: int, prefix: str = "猜码者") -> list[str]:
    """`count` wrong codes, five from each of new followers (the most one follower may make)."""
    replies = []
    for i in range((count + 4) // 5):
        guesser = wechat_user(f"{prefix}{i}", bind=False)
        replies += [guesser.say(f"绑定 {WRONG}").text for _ in range(min(5, count - 5 * i))]
    return replies


def test_fifty_wrong_codes_from_many_followers_pause_every_bind_until_the_hour_ends(
        wechat_user, people, services, clock, queued):
    clock.set("2026-11-24 10:05")
    people.add("周春明", "admin")
    people.add("王芳", "teacher")
    people.student("陈小明", "三(2)班")
    wechat_user("周春明")

    replies = guess_from_many(wechat_user, 49)
    assert all("无效" in r for r in replies), replies
    assert queued("bind_guard") == []
    assert "无效" in wechat_user("猜码者末", bind=False).say(f"绑定 {WRONG}").text  # the 50th is still answered
    (alert,) = queued("bind_guard")
    assert alert.name == "周春明" and "50次错误的绑定码" in alert.text and "11个微信" in alert.text
    assert "暂停到11:00" in alert.text

    # the rest of the window: every bind is refused, the right code too, and nothing more is counted
    teacher, parent = wechat_user("王芳", bind=False), wechat_user("妈妈", bind=False)
    paused = teacher.say(f"绑定 {people.code_of('王芳')}").text
    assert "绑定暂停" in paused and "55分钟" in paused and "绑定成功" not in paused
    assert "绑定暂停" in parent.scan(f"bind:{people.code_of('陈小明')}").text
    assert all("绑定暂停" in r for r in guess_from_many(wechat_user, 10, "又一个"))
    assert "还没有绑定" in teacher.say("我").text and "还没有绑定" in parent.say("我").text
    assert len(queued("bind_guard")) == 1  # told once per window
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(BindAttempt)) == 50

    clock.set("2026-11-24 11:00")  # a new window
    assert "绑定成功" in teacher.say(f"绑定 {people.code_of('王芳')}").text
    assert "无效" in wechat_user("新窗口", bind=False).say(f"绑定 {WRONG}").text
    assert len(queued("bind_guard")) == 1


def test_simultaneous_wrong_codes_are_counted_exactly_and_alert_once(app, wechat_user, people, services, clock,
                                                                    queued):
    """On PostgreSQL the binds really overlap: the window's row is locked by each, so of ten wrong
    codes sent at once when 45 are counted, exactly five are checked and five refused."""
    from tests.test_numbering import at_once

    clock.set("2026-11-24 10:05")
    people.add("周春明", "admin")
    wechat_user("周春明")
    guess_from_many(wechat_user, 45)
    users = [wechat_user(f"同时{i}", bind=False) for i in range(10)]

    replies = at_once(app, users, [f"绑定 {WRONG}"] * len(users))

    assert sorted("无效" if "无效" in r else "暂停" if "绑定暂停" in r else r for r in replies) == (
        ["无效"] * 5 + ["暂停"] * 5)
    assert len(queued("bind_guard")) == 1
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(BindAttempt)) == 50


# -- the parents already bound hear of a new one ---------------------------------------------------------
def test_a_second_and_third_parent_binding_tell_the_parents_already_bound(wechat_user, people, deliver,
                                                                           fake_wechat):
    people.student("陈小明", "三(2)班")
    code = people.code_of("陈小明")
    mum, dad, third = (wechat_user(name, bind=False) for name in ("妈妈", "爸爸", "第三人"))

    assert "绑定成功" in mum.say(f"绑定 {code}").text
    deliver()
    assert fake_wechat.sent_to("妈妈") == []  # the first parent: nobody to tell
    assert "绑定成功" in dad.say(f"绑定 {code}").text
    deliver()
    (told,) = fake_wechat.sent_to("妈妈")
    assert "陈小明" in told.text and "三(2)班" in told.text and "如非本人家属，请联系学校" in told.text
    assert fake_wechat.sent_to("爸爸") == []  # not told of themselves

    assert "绑定成功" in third.say(f"绑定 {code}").text
    deliver()
    assert len(fake_wechat.sent_to("妈妈")) == 2 and "如非本人家属，请联系学校" in fake_wechat.sent_to("妈妈")[-1].text
    assert len(fake_wechat.sent_to("爸爸")) == 1 and fake_wechat.sent_to("第三人") == []

    assert "无需重复" in dad.say(f"绑定 {code}").text  # a repeated bind is no new parent
    deliver()
    assert len(fake_wechat.sent_to("妈妈")) == 2 and len(fake_wechat.sent_to("爸爸")) == 1


# -- 解绑 asks first ----------------------------------------------------------------------------------------
def test_unbind_is_confirmed_and_anything_else_keeps_the_binding(wechat_user, people, services):
    people.add("王芳", "teacher")
    user = wechat_user("王芳")

    for other in ("好的", "我", "取消"):
        assert "确认解绑" in user.say("解绑").text
        kept = user.say(other).text
        assert "已解绑" not in kept and ("已取消" in kept), (other, kept)
        assert binding_of(services, user).person_id == person_id_of(services, "王芳")
    assert "确认解绑" in user.say("确认解绑").text  # with nothing pending it asks, it does not unbind
    assert binding_of(services, user).person_id == person_id_of(services, "王芳")
    assert "已解绑" in user.say("确认解绑").text
    assert binding_of(services, user).person_id is None


# -- a new code -------------------------------------------------------------------------------------------
def test_cli_reissue_after_unbind_gives_a_code_that_binds_and_the_old_one_is_unknown(wechat_user, people, houqin,
                                                                                   services):
    people.add("王芳", "teacher")
    old = people.code_of("王芳")
    user = wechat_user("王芳")
    user.dialog([("解绑", "确认解绑"), ("确认解绑", "已解绑")])

    result = houqin("codes", "reissue", "王芳")

    assert result.exit_code == 0, result.output
    new = people.code_of("王芳")
    assert new != old and f"新的绑定码：{new}" in result.output and "旧绑定码已作废" in result.output
    listed = houqin("codes", "--json")
    assert new in listed.output and old not in listed.output
    assert user.say(f"绑定 {old}").text == user.say(f"绑定 {WRONG}").text.replace(WRONG, old)
    assert "绑定成功" in user.say(f"绑定 {new}").text and "王芳" in user.say("我").text


def test_reissue_for_a_lost_phone_moves_the_person_to_the_new_wechat(wechat_user, people, houqin, services):
    people.add("王芳", "teacher")
    lost = wechat_user("王芳")
    result = houqin("codes", "reissue", "王芳")
    assert "王芳原来绑定的1个微信已解绑" in result.output
    assert binding_of(services, lost).person_id is None  # at once: the lost phone hears nothing more
    assert "还没有绑定" in lost.say("我").text
    new_phone = wechat_user("王芳新手机", bind=False)

    assert "绑定成功" in new_phone.say(f"绑定 {people.code_of('王芳')}").text

    assert binding_of(services, new_phone).person_id == person_id_of(services, "王芳")
    assert binding_of(services, lost).person_id is None


def test_reissue_after_expiry_and_for_a_students_parent_code(wechat_user, people, houqin, clock):
    clock.set("2026-11-01 08:00")
    people.add("王芳", "teacher")
    people.student("陈小明", "三(2)班")
    old_parent_code = people.code_of("陈小明")
    clock.set("2026-11-24 10:00")  # both codes expired
    teacher, parent = wechat_user("王芳", bind=False), wechat_user("妈妈", bind=False)
    assert "过期" in teacher.say(f"绑定 {people.code_of('王芳')}").text

    assert houqin("codes", "reissue", "王芳").exit_code == 0
    result = houqin("codes", "reissue", "陈小明")

    assert "陈小明（学生，三(2)班）的家长" in result.output and "2026-12-08 10:00前有效" in result.output
    assert "绑定成功" in teacher.say(f"绑定 {people.code_of('王芳')}").text
    assert "无效" in parent.say(f"绑定 {old_parent_code}").text
    assert "绑定成功" in parent.say(f"绑定 {people.code_of('陈小明')}").text


def test_cli_reissue_asks_which_one_for_a_shared_name(people, houqin, services):
    people.add("张丽", "teacher", phone="13800000011", class_name="三(2)班")
    people.add("张丽", "staff", phone="13800000022")
    before = {p: people_codes(services, p) for p in ("13800000011", "13800000022")}

    result = houqin("codes", "reissue", "张丽", input="2\n")

    assert result.exit_code == 0, result.output
    assert "有2个「张丽」" in result.output
    assert "1. 张丽（教师，三(2)班，手机13800000011）" in result.output
    assert "2. 张丽（后勤，手机13800000022）" in result.output
    after = {p: people_codes(services, p) for p in ("13800000011", "13800000022")}
    assert after["13800000011"] == before["13800000011"]  # the other 张丽 keeps her code
    assert len(after["13800000022"]) == 2 and after["13800000022"][-1] in result.output

    nobody = houqin("codes", "reissue", "不存在")
    assert nobody.exit_code != 0 and "没有找到「不存在」" in nobody.output


def people_codes(services, phone: str) -> list[str]:
    with services.factory() as s:
        return list(s.scalars(select(BindCode.code).join(Person).where(Person.phone == phone).order_by(BindCode.id)))


def test_admin_reissues_in_chat_and_picks_among_namesakes(wechat_user, people, services):
    people.add("周春明", "admin")
    people.add("张丽", "teacher", phone="13800000011", class_name="三(2)班")
    people.student("张丽", "一(1)班")
    admin = wechat_user("周春明")
    old = people_codes(services, "13800000011")[0]

    asked = admin.say("重发绑定码 张丽").text
    assert "有2个「张丽」" in asked and "1. 张丽（教师，三(2)班，手机13800000011）" in asked
    assert "2. 张丽（学生，一(1)班）" in asked
    assert "请回复序号 1-2" in admin.say("3").text
    done = admin.say("1").text

    new = people_codes(services, "13800000011")[-1]
    assert new != old and f"新的绑定码：{new}" in done
    user = wechat_user("张丽", bind=False)
    assert "无效" in user.say(f"绑定 {old}").text
    assert "绑定成功" in user.say(f"绑定 {new}").text
    assert "仅限管理员" in user.say("重发绑定码 周春明").text
    assert "没有找到「李四」" in admin.say("重发绑定码 李四").text
    assert "重发绑定码 姓名" in admin.say("重发绑定码").text


# -- no second person for a parent who binds their child's code -----------------------------------------
def test_a_parent_who_unbound_and_binds_the_childs_code_is_the_same_person_again(wechat_user, people, services):
    people.add("陈建国", "parent")
    people.student("陈小明", "三(2)班")
    dad = wechat_user("陈建国")
    assert "绑定成功" in dad.say(f"绑定 {people.code_of('陈小明')}").text
    dad.dialog([("解绑", "确认解绑"), ("确认解绑", "已解绑")])

    again = dad.say(f"绑定 {people.code_of('陈小明')}").text

    assert "欢迎回来" in again and "陈建国" in again and "陈小明" in again
    assert "陈建国" in dad.say("我").text
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(Person).where(Person.name.like("陈小明家长%"))) == 0


def test_a_parent_made_by_the_childs_code_becomes_the_real_person_with_their_code(wechat_user, people, houqin,
                                                                                services):
    people.add("陈建国", "parent")
    people.student("陈小明", "三(2)班")
    people.student("陈小红", "一(1)班")
    old_phone = wechat_user("陈建国")
    old_phone.say(f"绑定 {people.code_of('陈小明')}")
    new_phone = wechat_user("陈建国新手机", bind=False)
    new_phone.say(f"绑定 {people.code_of('陈小明')}")  # lost phone: made 陈小明家长 ...
    new_phone.say(f"绑定 {people.code_of('陈小红')}")  # ... with a second child
    assert "陈小明家长" in new_phone.say("我").text

    houqin("codes", "reissue", "陈建国")
    done = new_phone.say(f"绑定 {people.code_of('陈建国')}").text

    assert "绑定成功" in done and "陈建国" in done
    me = new_phone.say("我").text
    assert "陈建国" in me and "陈小明" in me and "陈小红" in me
    assert binding_of(services, old_phone).person_id is None
    with services.factory() as s:
        stand_in = s.scalar(select(Person).where(Person.name == "陈小明家长"))
        assert stand_in is not None and not stand_in.bindings  # kept for the record, with nobody bound
        assert s.scalar(select(func.count()).select_from(ParentLink).where(ParentLink.person_id == stand_in.id)) == 0
        xiaoming = s.scalar(select(Student).where(Student.name == "陈小明"))
        assert [link.person.name for link in xiaoming.parents] == ["陈建国"]


def test_a_follower_not_yet_bound_is_pointed_to_binding(wechat_user, people) -> None:
    stranger = wechat_user("路人甲", bind=False)
    lost = stranger.say("我是三(2)班陈小明的家长").text
    assert "发送「绑定 绑定码」绑定身份" in lost and "后勤处" in lost
    asked = stranger.say("绑定码在哪里拿").text
    assert "无效" not in asked and "班主任或学校后勤处" in asked
