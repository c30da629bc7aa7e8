"""The register: the import with its new columns (old files still import; problems by row, nothing
half-imported), 本室资产 for a room's responsible person, and 资产 <编号>: one thing's file and history."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.tables import TableError
from handlers.assets.register import import_assets
from models import Asset
from tests.conftest import asset_id
from tests.handlers.assets.conftest import scan


def test_the_import_reads_the_register_columns(school, services) -> None:
    with services.factory() as s:
        laptop = s.scalar(select(Asset).where(Asset.code == "DJ-101"))
        key = s.scalar(select(Asset).where(Asset.code == "YS-KX1"))
        assert laptop is not None and key is not None
        assert (laptop.price, laptop.lendable, laptop.needs_approval, laptop.status) == (Decimal("5200.50"), True,
                                                                                       True, "in_use")
        assert laptop.custodian is not None and laptop.custodian.name == "殷奇"
        assert f"{laptop.purchased_on}" == "2024-09-01"
        assert (key.kind, key.quantity, key.category) == ("key", 3, "门窗")


def test_an_old_file_still_imports(school, services, tmp_path: Path) -> None:
    (tmp_path / "old.csv").write_text("编号,名称,类别,房间\nSD-0302,空调,水电,三(2)班\n", encoding="utf-8")
    with services.factory() as s, s.begin():
        assert import_assets(s, tmp_path / "old.csv", now=services.now()) == 1
    with services.factory() as s:
        aircon = s.scalar(select(Asset).where(Asset.code == "SD-0302"))
        assert aircon is not None and (aircon.status, aircon.quantity, aircon.lendable) == ("in_use", 1, False)


def test_a_bad_file_imports_nothing_and_names_each_row(school, services, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("编号,名称,房间,保管人,价格,数量,可借,状态\n"
                                      "X-1,椅子,三(2)班,,,2,是,在用\n"
                                      "X-2,桌子,火星,,,1,,\n"
                                      "X-3,柜子,,赵六,abc,0,也许,丢了\n", encoding="utf-8")
    with services.factory() as s, s.begin(), pytest.raises(TableError) as err:
        import_assets(s, tmp_path / "bad.csv", now=services.now())
    text = "\n".join(err.value.problems)
    for needle in ("第3行：房间「火星」", "第4行：保管人「赵六」", "第4行：价格「abc」", "第4行：数量「0」",
                   "第4行：可借「也许」", "第4行：状态「丢了」"):
        assert needle in text
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(Asset).where(Asset.code.like("X-%"))) == 0


def test_the_cli_import_reports_rows(school, houqin, tmp_path: Path) -> None:
    (tmp_path / "more.csv").write_text("编号,名称,类别,房间,数量,可借\nTY-002,跳绳,其他,体育器材室,30,是\n",
                                       encoding="utf-8")
    result = houqin("assets", "import", str(tmp_path / "more.csv"))
    assert result.exit_code == 0 and "资产导入完成：1 条" in result.output


def test_room_assets_for_the_responsible_person(school, wechat_user) -> None:
    reply = wechat_user("程财宝").say("本室资产")
    assert "体育器材室 的资产" in reply.text and "TY-001 篮球 ×10 · 在用" in reply.text
    assert "科学室 的资产" in reply.text and "YS-KX1 科学室门钥匙 ×3" in reply.text
    teacher = wechat_user("张丽")
    assert "DJ-0302 投影仪 · 在用" in teacher.say("本室资产").text
    assert "负责人是程财宝" in teacher.say("本室资产 科学室").text
    kept = wechat_user("殷奇").say("本室资产").text  # no room, but a thing in his keeping
    assert "你保管的其他资产" in kept and "DJ-101 笔记本电脑" in kept
    assert "不是任何房间的负责人" in wechat_user("周春明").say("本室资产").text


def test_a_things_file_holds_its_history(school, wechat_user, services) -> None:
    teacher = wechat_user("王强")
    teacher.say("借 篮球 2")
    teacher.say("还 篮球")
    scan(teacher, f"asset:{asset_id(services, 'TY-001')}")
    teacher.say("气不足")
    reply = wechat_user("程财宝").say("资产 TY-001")
    assert "篮球（TY-001）：其他 · 维修中" in reply.text and "保管人：程财宝" in reply.text
    assert "购置：2024-03-01；价格：120.00元" in reply.text
    for needle in ("登记 导入登记", "借出 J1 王强 ×2", "归还 J1 王强 ×2", "报修 R1 气不足"):
        assert needle in reply.text
    assert "没有编号为「XX」的资产" in teacher.say("资产 XX").text


def test_a_move_is_recorded_in_the_things_history(school, wechat_user) -> None:
    teacher, staff = wechat_user("王强"), wechat_user("程财宝")
    assert "只有后勤、管理员或" in teacher.say("调动 DJ-0302 四(1)班").text
    assert "不在登记表中" in staff.say("调动 DJ-0302 火星").text
    assert "已登记调动：投影仪（DJ-0302） 三(2)班 → 四(1)班" in staff.say("调动 DJ-0302 4-1").text
    assert "已登记在 四(1)班" in staff.say("调动 DJ-0302 四(1)班").text
    assert "DJ-0302 投影仪" in teacher.say("本室资产").text  # now in his room
    assert "调动 三(2)班 → 四(1)班（程财宝）" in staff.say("资产 DJ-0302").text


def test_a_photo_sent_after_the_file_is_kept_and_downloaded(school, wechat_user, services, fetch_media) -> None:
    from models import AssetPhoto

    staff = wechat_user("程财宝")
    assert "10分钟内直接发送照片" in staff.say("资产 TY-001").text
    assert "照片已存入 篮球（TY-001） 的档案" in staff.image(media_id="media_ball").text
    assert fetch_media() == 1
    with services.factory() as s:
        photo = s.scalar(select(AssetPhoto))
        assert photo is not None and photo.status == "saved" and photo.path.startswith("assets/")
    assert "照片：1 张" in staff.say("资产 TY-001").text
    assert "10分钟内" not in wechat_user("王强").say("资产 TY-001").text  # not his to keep
