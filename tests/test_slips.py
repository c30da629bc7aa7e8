"""Bind-code slips: `houqin codes slips --class 三年级2班 [--staff] -o FILE` prints a slip per student for
the parents (or per unbound staff member): name, code, a temporary QR code `bind:<code>` made through
the fake WeChat, three lines of instructions; the Chinese font travels inside the PDF."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.fonts import NO_FONT
from models import BindCode
from tests.test_export_repairs import assert_chinese_embedded, pdf_text


@pytest.fixture
def school(people, clock):
    clock.set("2026-11-24 10:00")
    people.add("周春明", "admin")
    people.add("张丽", "teacher", class_name="三(2)班")
    people.add("王强", "teacher", class_name="四(1)班")
    people.add("程财宝", "staff")
    for name in ("陈小明", "刘欣怡"):
        people.student(name, "三(2)班")
    people.student("孙悦", "四(1)班")
    return people


def qr_calls(fake_wechat) -> list[dict]:
    return [c.body for c in fake_wechat.calls if c.endpoint == "qrcode/create"]


def test_class_slips_for_the_parents(school, houqin, fake_wechat, tmp_path: Path) -> None:
    out = tmp_path / "slips.pdf"
    result = houqin("codes", "slips", "--class", "三年级2班", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"三年级2班 家长绑定码 2 张（新发绑定码 0 个），1 页：{out}"
    text = pdf_text(out)
    for name in ("陈小明", "刘欣怡"):
        code = school.code_of(name)
        assert f"{name} 家长" in text and code in text and f"绑定 {code}" in text
        assert f"关注公众号即绑定为{name}的家长" in text
    assert "孙悦" not in text  # another class
    assert "2026-12-08前有效，家中每位家长都可使用，请勿外传" in text
    assert_chinese_embedded(out)
    calls = qr_calls(fake_wechat)
    assert sorted(c["action_info"]["scene"]["scene_str"] for c in calls) == sorted(
        f"bind:{school.code_of(n)}" for n in ("陈小明", "刘欣怡"))
    assert all(c["action_name"] == "QR_STR_SCENE" and c["expire_seconds"] == 14 * 24 * 3600 for c in calls)


def test_staff_slips_leave_out_the_bound_and_renew_an_expired_code(school, houqin, fake_wechat, wechat_user,
                                                                   services, clock, tmp_path: Path) -> None:
    wechat_user("王强")  # binds: his code is used, he needs no slip
    clock.advance(days=15)  # every code of the fixture has expired
    out = tmp_path / "staff.pdf"
    result = houqin("codes", "slips", "--staff", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "全体教职工绑定码 3 张（新发绑定码 3 个）" in result.output
    text = pdf_text(out)
    assert all(name in text for name in ("周春明", "张丽", "程财宝")) and "王强" not in text
    assert "仅限本人使用一次" in text
    with services.factory() as s:
        fresh = list(s.scalars(select(BindCode).where(BindCode.expires_at > services.now())))
    assert len(fresh) == 3 and all(c.code in text for c in fresh)

    again = houqin("codes", "slips", "--class", "三(2)班", "--staff", "-o", str(out))
    assert "三(2)班教职工绑定码 1 张（新发绑定码 0 个）" in again.output  # the codes just issued are reused
    assert "张丽" in pdf_text(out) and "周春明" not in pdf_text(out)


def test_slips_need_a_class_that_has_students(school, houqin, tmp_path: Path) -> None:
    out = tmp_path / "x.pdf"
    no_class = houqin("codes", "slips", "-o", str(out))
    assert no_class.exit_code == 2 and "请用 --class 指定班级" in no_class.output
    empty = houqin("codes", "slips", "--class", "六(9)班", "-o", str(out))
    assert empty.exit_code == 1 and "六(9)班没有学生" in empty.output
    assert not out.exists()


def test_without_a_chinese_font_the_error_says_what_to_install(school, houqin, monkeypatch, tmp_path: Path) -> None:
    from reportlab.pdfbase import pdfmetrics

    from bot import fonts

    monkeypatch.setenv("HOUQIN_CJK_FONT", str(tmp_path / "missing.ttf"))
    monkeypatch.delitem(pdfmetrics._fonts, fonts.FONT_NAME, raising=False)
    result = houqin("codes", "slips", "--class", "三(2)班", "-o", str(tmp_path / "x.pdf"))
    assert result.exit_code == 1 and NO_FONT in result.output


def test_the_console_prints_a_class_slips(school, client, houqin, fake_wechat, tmp_path: Path) -> None:
    from tests.test_console import PASSWORD, sign_in

    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    sign_in(client)
    assert "打印绑定码条" in client.get("/admin/people").get_data(as_text=True)
    res = client.get("/admin/people/slips?class=三(2)班")
    assert res.status_code == 200 and res.mimetype == "application/pdf"
    path = tmp_path / "slips.pdf"
    path.write_bytes(res.data)
    text = pdf_text(path)
    assert "陈小明 家长" in text and school.code_of("陈小明") in text
    assert_chinese_embedded(path)
    assert client.get("/admin/people/slips?class=六(9)班").status_code == 404
    assert client.get("/admin/people/slips").status_code == 400
