"""Keys: who holds which copy (钥匙 科学室, and asked in a sentence), 领钥匙 / 还钥匙 with every refusal
changing nothing, and the term-end check listing every key not returned."""

from __future__ import annotations

from pathlib import Path

from bot.school import import_calendar
from tests.conftest import at
from tests.handlers.assets.conftest import loans


def test_take_and_return_a_key_copy_by_copy(school, wechat_user, services) -> None:
    wang, zhang = wechat_user("王强"), wechat_user("张丽")
    assert "登记了几种钥匙" in wang.say("领钥匙 科学室").text  # a door key and a cabinet key
    reply = wang.say("领钥匙 科学室 门")
    assert "已领取 科学室门钥匙 第1把（J1）" in reply.text and "11月23日（周一）" in reply.text
    assert "你已领有 科学室门钥匙 第1把" in wang.say("领钥匙 科学室 门").text
    assert "第2把" in zhang.say("领钥匙 实验室 门 周三").text  # the room by its alias, a day given
    who = wechat_user("程财宝").say("钥匙 科学室").text
    assert "科学室门钥匙（YS-KX1）共 3 把" in who and "第1把 王强" in who and "第2把 张丽" in who
    assert "在库 1 把" in who and "科学室柜钥匙（YS-KX2）共 1 把：在库 1 把" in who
    assert "第1把 王强" in wechat_user("殷奇").say("科学室的钥匙在谁那").text  # asked in a sentence
    assert "只能由领取人归还" in wechat_user("殷奇").say("还钥匙 科学室").text  # by someone else
    assert "已归还 科学室门钥匙 第1把（J1）" in wang.say("还钥匙 科学室").text
    assert "不用再还" in wang.say("还钥匙 科学室").text  # twice
    assert "不在登记表中" in wang.say("领钥匙 火星").text
    assert "没有登记钥匙" in wang.say("领钥匙 三(2)班").text
    assert loans(services) == [("J1", "王强", 1, "returned"), ("J2", "张丽", 1, "out")]


def test_all_copies_out(school, wechat_user, services) -> None:
    wechat_user("王强").say("领钥匙 科学室 柜")
    assert "1 把都已领出：第1把 王强" in wechat_user("张丽").say("领钥匙 科学室 柜").text
    assert len(loans(services)) == 1


def test_the_term_end_check_lists_every_key_not_returned(school, wechat_user, runner, queued, services,
                                                         tmp_path: Path) -> None:
    (tmp_path / "calendar.csv").write_text("日期,类型\n2026-09-01,开学\n2027-01-22,学期结束\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        import_calendar(s, tmp_path / "calendar.csv")
    wechat_user("周春明")
    wechat_user("王强").say("领钥匙 科学室 门")
    wechat_user("张丽").say("领钥匙 科学室 柜")
    wechat_user("张丽").say("还钥匙 科学室")
    assert runner.run_now("check_keys_at_term_end", at("2027-01-21 15:00")).result == "今天不是学期结束日"
    assert runner.run_now("check_keys_at_term_end", at("2027-01-22 15:00")).result.startswith("未还钥匙 1 把")
    pushes = queued(kind="keys_term_check")
    assert sorted(p.name for p in pushes) == ["周春明", "王强"]
    admin = next(p for p in pushes if p.name == "周春明")
    assert "科学室 科学室门钥匙 第1把 · 王强" in admin.text and "已逾期" in admin.text
    assert "张丽" not in admin.text
    assert "未归还的钥匙（1 把）" in wechat_user("周春明").say("钥匙 未还").text
