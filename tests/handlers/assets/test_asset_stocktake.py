"""Stocktakes: admin starts one (盘点 开始 范围, or `houqin stocktake start`), checkers scan room and asset
codes or send codes in bulk, an unknown code is noted with a photo, and 盘点 结束 gives found, missing,
moved and unregistered."""

from __future__ import annotations

from sqlalchemy import select

from models import RepairTicket, StocktakeCheck, StocktakePhoto
from tests.conftest import asset_id, room_id
from tests.handlers.assets.conftest import scan


def test_a_stocktake_of_a_building(school, wechat_user, services, fetch_media) -> None:
    admin, staff = wechat_user("周春明"), wechat_user("程财宝")
    assert "只有管理员" in staff.say("盘点 开始 综合楼").text
    assert "没有进行中的盘点" in staff.say("盘点 TY-001").text
    assert "不是全校、已登记的楼栋或房间" in admin.say("盘点 开始 火星").text
    assert "已开始盘点：综合楼，应盘 4 件" in admin.say("盘点 开始 综合楼").text
    assert "已有进行中的盘点" in admin.say("盘点 开始 全校").text
    assert "现在在 科学室" in scan(staff, f"room:{room_id(services, '科学室')}").text
    reply = scan(staff, f"asset:{asset_id(services, 'YS-KX1')}")
    assert "科学室门钥匙（YS-KX1） ✓（科学室）" in reply.text
    reply = staff.say("盘点 科学室 DJ-101, TY-001 ZZ-9")  # TY-001 belongs in 体育器材室
    assert "已记 2 件" in reply.text and "登记在 体育器材室" in reply.text and "ZZ-9" in reply.text
    assert "照片已记在未登记物品 ZZ-9 上" in staff.image(media_id="media_zz9").text
    assert "已盘 3/4 件" in staff.say("盘点").text
    school.add("李明", "teacher")  # responsible for no room: does not check
    assert "盘点由后勤" in wechat_user("李明").say("盘点 DJ-101").text
    ended = admin.say("盘点 结束").text
    assert "应盘 4 件，盘到 3 件" in ended and "缺失 1 件（科学室柜钥匙（YS-KX2））" in ended
    assert "位置变动 1 件（篮球（TY-001） 在 科学室）" in ended and "未登记 1 件（ZZ-9）" in ended
    with services.factory() as s:
        unknown = s.scalar(select(StocktakeCheck).where(StocktakeCheck.code == "ZZ-9"))
        assert unknown is not None and unknown.photo_media_id == "media_zz9" and unknown.person.name == "程财宝"
    assert "没有进行中的盘点" in admin.say("盘点 结束").text
    assert fetch_media() == 1  # the unregistered thing's photo is downloaded (WeChat keeps media 3 days)
    with services.factory() as s:
        photo = s.scalar(select(StocktakePhoto))
        assert photo is not None and photo.status == "saved" and photo.path.startswith("stocktakes/")


def test_outside_a_stocktake_a_scan_is_a_repair_and_a_teacher_not_responsible_does_not_check(
        school, wechat_user, services) -> None:
    admin = wechat_user("周春明")
    admin.say("盘点 开始 三(2)班")
    teacher = wechat_user("王强")  # responsible for 四(1)班: a checker
    assert "✓" in scan(teacher, f"asset:{asset_id(services, 'DJ-0302')}").text
    admin.say("盘点 结束")
    reply = scan(teacher, f"asset:{asset_id(services, 'DJ-0302')}")
    assert "描述" in reply.text or "投影仪" in reply.text
    teacher.say("不亮了")
    with services.factory() as s:
        assert s.scalar(select(RepairTicket)) is not None


def test_the_stocktake_from_the_cli(school, houqin, wechat_user) -> None:
    result = houqin("stocktake", "start", "体育器材室")
    assert result.exit_code == 0 and "已开始盘点：体育器材室，应盘 1 件" in result.output
    wechat_user("程财宝").say("盘点 体育器材室 TY-001")
    result = houqin("stocktake", "end")
    assert result.exit_code == 0 and "盘到 1 件" in result.output and "缺失 0 件" in result.output
    assert houqin("stocktake", "end").exit_code == 1
