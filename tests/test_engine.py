"""The conversation engine through the real webhook: help, role checks, 取消, state in the database,
its 10-minute expiry, and one test run over every capability in handlers.CAPABILITIES.

Two test-only capabilities are declared here and appended to the production list for the app
these tests talk to: a one-shot one limited to staff and admin, and a two-step one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from bot import create_app
from bot.engine import CONVERSATION_TIMEOUT, NOT_UNDERSTOOD, Context, Conversation, Engine, Incoming, Reply
from bot.inbox import APOLOGY
from bot.services import Services
from bot.text import parse_number
from bot.wechat.simulator import WeChatUser
from handlers import CAPABILITIES
from models import ROLE_NAMES, ROLES, Base, ConversationState, Push

FALLBACK = NOT_UNDERSTOOD.split("「")[0]  # 没有听懂

# -- test-only capabilities ------------------------------------------------------------------------
ERRAND_HELP = "差事 内容 — 记录一件差事"
errand = Conversation("test_errand", title="差事", keywords=["差事"], menu_keys=["TEST_ERRAND"],
                      roles={"staff", "admin"}, help=ERRAND_HELP)


@errand.entry
def record_errand(msg: Incoming, ctx: Context) -> Reply:
    what = " ".join(msg.args) or "无"
    ctx.outbox.notify(ctx.person, "test_errand", f"差事：{what}")
    return Reply.end(f"差事已记录：{what}")


SURVEY_HELP = "问卷 — 回答两个问题"
ASK_NAME = "你叫什么名字？"
survey = Conversation("test_survey", title="问卷", keywords=["问卷"], roles={"teacher", "admin"}, help=SURVEY_HELP)


@survey.entry
def start_survey(msg: Incoming, ctx: Context) -> Reply:
    return Reply(ASK_NAME, next="name")


@survey.on("name")
def got_name(msg: Incoming, ctx: Context) -> Reply:
    if not msg.text:
        return Reply("请用文字回答：" + ASK_NAME, next="name")
    return Reply(f"{msg.text}，你几岁？", next="age", data={"name": msg.text})


@survey.on("age")
def got_age(msg: Incoming, ctx: Context) -> Reply:
    age = parse_number(msg.text)
    if age is None:
        return Reply("请回答一个数字：你几岁？", next="age")
    ctx.outbox.notify(ctx.person, "test_survey", f"{ctx.data['name']} {age}")
    return Reply.end(f"问卷完成：{ctx.data['name']}，{age}岁。")


KEYS_HELP = "库房钥匙 — 借用库房钥匙（管理员，或库房管理人）"
KEEPER = "库房管理人"
keys = Conversation("test_keys", title="库房钥匙", keywords=["库房钥匙"], roles={"admin"}, help=KEYS_HELP,
                    permits=lambda ctx: ctx.person is not None and ctx.person.name == KEEPER)


@keys.entry
def lend_keys(msg: Incoming, ctx: Context) -> Reply:
    return Reply.end("钥匙已借出。")


EXTRAS = [errand, survey, keys]


@pytest.fixture
def capabilities() -> list[Conversation]:
    return [*CAPABILITIES, *EXTRAS]


@pytest.fixture
def app(services: Services, capabilities: list[Conversation]) -> Flask:
    """The app, running an engine with these capabilities (overrides conftest's `app`)."""
    services.__dict__["engine"] = Engine(capabilities)
    return create_app(services=services)


# -- helpers ---------------------------------------------------------------------------------------
def state_of(services: Services, user: WeChatUser) -> ConversationState | None:
    with services.factory() as s:
        return s.get(ConversationState, user.openid)


def row_counts(services: Services) -> dict[str, int]:
    """Rows in every table but the inbound audit log and the seen nonces (which record every message
    by design)."""
    with services.factory() as s:
        return {t.name: int(s.scalar(select(func.count()).select_from(t)) or 0)
                for t in Base.metadata.sorted_tables if t.name not in ("inbound_messages", "seen_nonces")}


def pushes(services: Services, kind: str) -> list[str]:
    with services.factory() as s:
        return list(s.scalars(select(Push.text).where(Push.kind == kind).order_by(Push.id)))


def answered(text: str) -> bool:
    return bool(text) and FALLBACK not in text and APOLOGY not in text


# -- help ------------------------------------------------------------------------------------------
def test_help_lists_only_what_the_senders_roles_allow(wechat_user, people):
    people.add("张老师", "teacher")
    people.add("程师傅", "staff")
    people.add("周主任", "admin")
    unbound = wechat_user("路人", bind=False).say("帮助").text
    teacher = wechat_user("张老师").say("帮助").text
    staff = wechat_user("程师傅").say("帮助").text
    admin = wechat_user("周主任").say("帮助").text

    assert "绑定" in unbound and "还没有绑定" in unbound
    assert ERRAND_HELP not in unbound and SURVEY_HELP not in unbound
    assert SURVEY_HELP in teacher and ERRAND_HELP not in teacher and "还没有绑定" not in teacher
    assert ERRAND_HELP in staff and SURVEY_HELP not in staff
    assert ERRAND_HELP in admin and SURVEY_HELP in admin
    assert len({unbound, teacher, staff, admin}) == 4
    for text in (unbound, teacher, staff, admin):
        assert "取消" in text  # how to end a conversation is always explained


def test_help_follows_the_capability_order(wechat_user, people):
    people.add("全能", *ROLES)
    text = wechat_user("全能").say("help 全部").text
    helps = [c.help for c in [*CAPABILITIES, *EXTRAS] if c.help]
    positions = [text.find(h) for h in helps]
    assert -1 not in positions, text
    assert positions == sorted(positions)


def test_help_and_use_follow_a_capabilitys_permits(wechat_user, people):
    """A capability may admit someone its roles do not (the bus manager named in the settings, say)."""
    people.add(KEEPER, "teacher")
    people.add("张老师", "teacher")
    keeper, teacher = wechat_user(KEEPER), wechat_user("张老师")

    assert KEYS_HELP in keeper.say("帮助").text
    assert keeper.say("库房钥匙").text == "钥匙已借出。"
    assert KEYS_HELP not in teacher.say("帮助").text
    refusal = teacher.say("库房钥匙").text
    assert "仅限" in refusal and "管理员" in refusal


@pytest.mark.parametrize("word", ["帮助", "?", "？", "help", "HELP", "Help", "　帮助　", "帮助？", "帮助!", "help?"])
def test_every_help_word_gives_help(wechat_user, people, word):
    people.add("周主任", "admin")
    text = wechat_user("周主任").say(word).text
    assert ERRAND_HELP in text and SURVEY_HELP in text


@pytest.mark.parametrize("capabilities", [list(CAPABILITIES)], ids=["production"])
def test_help_is_assembled_from_the_capabilities_the_engine_has(wechat_user, people, capabilities):
    people.add("全能", *ROLES)
    everyone = wechat_user("全能")
    text = everyone.say("帮助 全部").text
    assert ERRAND_HELP not in text and SURVEY_HELP not in text and KEYS_HELP not in text
    assert all(c.help in text for c in CAPABILITIES if c.help)
    assert FALLBACK in everyone.say("差事 扫地").text


# -- role checks -----------------------------------------------------------------------------------
def test_command_outside_the_senders_roles_is_refused_and_records_nothing(wechat_user, people, services):
    people.add("张老师", "teacher")
    people.add("程师傅", "staff")
    teacher = wechat_user("张老师")
    staff = wechat_user("程师傅")
    stranger = wechat_user("路人", bind=False)
    before = row_counts(services)

    refusal = teacher.say("差事 扫地").text
    clicked = teacher.click("TEST_ERRAND").text
    unbound = stranger.say("差事 扫地").text
    staff_on_survey = staff.say("问卷").text

    assert "抱歉" in refusal and "后勤" in refusal and "管理员" in refusal and "教师" in refusal
    assert "差事已记录" not in refusal
    assert "后勤" in clicked and "管理员" in clicked and "差事已记录" not in clicked
    assert "后勤" in unbound and "管理员" in unbound and "绑定" in unbound
    assert "教师" in staff_on_survey and "管理员" in staff_on_survey and ASK_NAME not in staff_on_survey
    assert row_counts(services) == before  # nothing recorded: no push, no conversation, no binding
    assert pushes(services, "test_errand") == []
    assert state_of(services, staff) is None and state_of(services, stranger) is None


def test_allowed_role_runs_the_command(wechat_user, people, services):
    people.add("程师傅", "staff")
    staff = wechat_user("程师傅")
    assert staff.say("差事 扫地").text == "差事已记录：扫地"
    assert staff.click("TEST_ERRAND").text == "差事已记录：无"
    assert pushes(services, "test_errand") == ["差事：扫地", "差事：无"]


# -- multi-turn conversations ----------------------------------------------------------------------
def test_second_message_continues_the_step(wechat_user, people, services):
    people.add("张老师", "teacher")
    user = wechat_user("张老师")

    user.dialog([("问卷", ASK_NAME), ("小明", "小明，你几岁？"), ("十岁", "问卷完成：小明，10岁。")])

    assert state_of(services, user) is None  # ended
    assert pushes(services, "test_survey") == ["小明 10"]
    assert FALLBACK in user.say("小明").text  # no conversation now: plain text is not understood


def test_a_step_can_ask_again(wechat_user, people):
    people.add("张老师", "teacher")
    user = wechat_user("张老师")
    user.dialog([("问卷", ASK_NAME), ("小明", "你几岁"), ("不告诉你", "请回答一个数字"),
                 ("四十二", "问卷完成：小明，42岁。")])


def test_voice_recognition_continues_a_conversation(wechat_user, people):
    people.add("张老师", "teacher")
    user = wechat_user("张老师")
    user.say("问卷")
    assert user.voice("小明。").text == "小明，你几岁？"
    assert user.voice("两岁！").text == "问卷完成：小明，2岁。"


def test_state_lives_in_the_database_and_survives_a_restart(wechat_user, people, services, clock,
                                                            capabilities):
    clock.set("2026-11-23 08:00")
    people.add("张老师", "teacher")
    user = wechat_user("张老师")
    user.say("问卷")
    user.say("小明")

    state = state_of(services, user)
    assert state is not None
    assert (state.conversation, state.step, state.data) == ("test_survey", "age", {"name": "小明"})
    assert state.expires_at == clock() + CONVERSATION_TIMEOUT

    # a new process: fresh services, engine and app on the same database
    restarted = Services.from_settings(services.settings, schema=services.schema)
    restarted.clock = clock
    restarted.__dict__["engine"] = Engine(capabilities)
    client = create_app(services=restarted).test_client()
    try:
        same_user = WeChatUser(user.openid, token=services.settings.wechat_token,
                               appid=services.settings.wechat_appid, aes_key=services.settings.wechat_aes_key,
                               transport=lambda url, body: (lambda r: (r.status_code, r.data))(
                                   client.post(url, data=body, content_type="text/xml")))
        assert same_user.say("九").text == "问卷完成：小明，9岁。"
    finally:
        restarted.db_engine.dispose()
    assert state_of(services, user) is None


def test_cancel_ends_the_conversation_mid_flow(wechat_user, people, services):
    people.add("张老师", "teacher")
    user = wechat_user("张老师")
    user.dialog([("问卷", ASK_NAME), ("小明", "你几岁")])

    reply = user.say("取消")

    assert "已取消" in reply.text and "问卷" in reply.text
    assert state_of(services, user) is None
    assert FALLBACK in user.say("十").text  # the step is gone
    assert pushes(services, "test_survey") == []  # nothing was recorded
    assert "没有进行中" in user.say("取消").text


@pytest.mark.parametrize("word", ["取消", "cancel", "CANCEL", "　取消　", "退出"])
def test_every_cancel_word_cancels(wechat_user, people, services, word):
    people.add("张老师", "teacher")
    user = wechat_user("张老师")
    user.say("问卷")
    assert "已取消" in user.say(word).text
    assert state_of(services, user) is None


def test_help_mid_flow_keeps_the_conversation(wechat_user, people):
    people.add("张老师", "teacher")
    user = wechat_user("张老师")
    user.dialog([("问卷", ASK_NAME), ("帮助", SURVEY_HELP), ("小明", "小明，你几岁？")])


def test_state_expires_after_ten_minutes(wechat_user, people, services, clock):
    clock.set("2026-11-23 08:00")
    people.add("张老师", "teacher")
    user = wechat_user("张老师")
    user.say("问卷")

    clock.advance(minutes=9)  # within the timeout: continues, and the timeout starts again
    assert user.say("小明").text == "小明，你几岁？"
    clock.advance(minutes=9, seconds=59)
    assert state_of(services, user) is not None
    clock.advance(seconds=62)  # 11 minutes after the last answer
    reply = user.say("十")

    assert FALLBACK in reply.text
    assert state_of(services, user) is None
    assert pushes(services, "test_survey") == []


def test_expiry_is_exactly_the_timeout(wechat_user, people, services, clock):
    clock.set("2026-11-23 08:00")
    people.add("张老师", "teacher")
    user = wechat_user("张老师")
    user.say("问卷")
    clock.advance(minutes=11)
    assert FALLBACK in user.say("小明").text
    assert state_of(services, user) is None
    # and a new conversation starts cleanly afterwards
    user.dialog([("问卷", ASK_NAME), ("小红", "小红，你几岁？")])
    assert state_of(services, user).expires_at == clock() + timedelta(minutes=10)


def test_engine_refuses_duplicate_capability_names():
    with pytest.raises(ValueError, match="unique"):
        Engine([*CAPABILITIES, errand, Conversation("test_errand", title="重复")])


# -- every capability ------------------------------------------------------------------------------
TRIGGERED = [c for c in CAPABILITIES if c.keywords or c.menu_keys]


def _roles_for(cap: Conversation) -> list[str]:
    return sorted(cap.roles) if cap.roles else ["teacher"]


@pytest.mark.parametrize("capabilities", [list(CAPABILITIES)], ids=["production"])
@pytest.mark.parametrize("cap", TRIGGERED, ids=lambda c: c.name)
def test_every_capability_has_help_answers_its_triggers_and_cancels(cap, capabilities, wechat_user, people,
                                                                    services):
    """Runs over handlers.CAPABILITIES as it stands, so a capability added later is covered too."""
    triggers = [("say", cap.sample or k) for k in cap.keywords] + [("click", k) for k in cap.menu_keys]
    for i, (how, trigger) in enumerate(triggers):
        name = f"试用{cap.name}{i}"
        people.add(name, *_roles_for(cap))
        user = wechat_user(name)

        if i == 0:  # help: its own, shown to those its roles allow, or another capability's
            help_text = user.say("帮助 全部").text
            if cap.help:
                assert cap.help in help_text, f"{cap.name}: its help is not shown to {_roles_for(cap)}"
            else:
                assert any(k in help_text for k in cap.keywords), f"{cap.name}: no help mentions {cap.keywords}"

        reply = user.say(trigger).text if how == "say" else user.click(trigger).text
        assert answered(reply), f"{cap.name}: {how} {trigger!r} answered {reply!r}"
        assert "仅限" not in reply, f"{cap.name}: {trigger!r} refused a permitted user: {reply!r}"
        if state_of(services, user) is not None:  # it started a conversation: 取消 ends it
            assert "已取消" in user.say("取消").text
            assert state_of(services, user) is None


@pytest.mark.parametrize("cap", [c for c in [*TRIGGERED, *EXTRAS] if c.roles], ids=lambda c: c.name)
def test_every_role_restricted_capability_refuses_others(cap, capabilities, wechat_user, people, services):
    outsider_roles = [r for r in ROLES if r not in cap.roles]
    triggers = [("say", cap.sample or k) for k in cap.keywords] + [("click", k) for k in cap.menu_keys]
    needed = [ROLE_NAMES[r] for r in cap.roles]
    users = [wechat_user(f"未绑定{cap.name}", bind=False)]
    if outsider_roles:
        people.add(f"外人{cap.name}", outsider_roles[0])
        users.append(wechat_user(f"外人{cap.name}"))
    before = row_counts(services)
    for user in users:
        for how, trigger in triggers:
            reply = user.say(trigger).text if how == "say" else user.click(trigger).text
            assert "仅限" in reply and all(n in reply for n in needed), (cap.name, trigger, reply)
            assert state_of(services, user) is None
    assert row_counts(services) == before


# -- help by topic, and pointing the way (issue 14) ---------------------------------------------------
PRODUCTION = pytest.mark.parametrize("capabilities", [list(CAPABILITIES)], ids=["production"])


@PRODUCTION
def test_help_shows_the_most_useful_commands_first_then_the_topics(wechat_user, people, capabilities):
    people.add("周主任", "admin")
    people.add("陈家长", "parent")
    admin = wechat_user("周主任").say("帮助").text
    commands = [line for line in admin.split("\n") if " — " in line]
    assert len(commands) == 5 and len(admin.split("\n")) <= 9, admin
    assert "帮助 报修" in admin and "校车" in admin.split("\n")[-2]
    parent = wechat_user("陈家长").say("帮助").text
    assert "请假 孩子姓名" in parent and "报修" not in parent and "值日" not in parent


@PRODUCTION
def test_help_on_one_topic_gives_all_of_it(wechat_user, people, capabilities):
    people.add("周主任", "admin")
    admin = wechat_user("周主任")
    topic = admin.say("帮助 报修").text
    repairs = [c.help for c in CAPABILITIES if c.topic == "报修"]
    assert topic.startswith("「报修」") and len(repairs) >= 7 and all(h in topic for h in repairs)
    assert "菜单" not in topic
    assert "没有「天气」这个主题" in admin.say("帮助 天气").text
    admin.say("报修")  # mid-dialog, a topic's help is answered and the dialog kept
    assert admin.say("帮助 报修").text == topic and "描述" in admin.say("三(2)班").text
    everything = admin.say("帮助 全部").text
    assert all(c.help in everything for c in CAPABILITIES if c.help and (not c.roles or "admin" in c.roles))


@PRODUCTION
def test_a_refusal_points_to_what_the_sender_can_do_instead(wechat_user, people, capabilities):
    people.add("陈家长", "parent")
    parent = wechat_user("陈家长")
    assert "发送「食堂 1-5 意见」评价今天的饭菜" in parent.say("食堂评价").text
    refusal = parent.say("报修 三(2)班 灯不亮").text
    assert "仅限" in refusal and "你可以发送「请假" in refusal  # no repairs for parents: their most useful command


@PRODUCTION
def test_not_understood_suggests_something_the_sender_can_do(wechat_user, people, capabilities):
    people.add("陈家长", "parent")
    people.add("张老师", "teacher")
    parent = wechat_user("陈家长").say("哈哈哈").text
    teacher = wechat_user("张老师").say("哈哈哈").text
    assert parent.startswith(FALLBACK) and "你可以发送「" in parent and "报修" not in parent
    assert teacher.startswith(FALLBACK) and "你可以发送「" in teacher and teacher != parent
