"""The demo school (`houqin demo`, which `houqin serve` also loads) comes with a register of things:
each room's equipment, things to lend, the keys of 科学室 / 音乐室 / 体育器材室, and 日常用品 with
reorder levels — seen through the real webhook as the office and a teacher would."""

from __future__ import annotations

from sqlalchemy import select

from bot.services import Services
from models import Asset, Supply
from models.repair import KEY


def test_demo_school_has_equipment_lendable_things_keys_and_supplies(services: Services, houqin, clock,
                                                                       wechat_user) -> None:
    clock.set("2026-11-24 10:00")  # a Tuesday
    loaded = houqin("demo")
    assert loaded.exit_code == 0, loaded.output

    with services.factory() as s:
        keys = {a.room.name for a in s.scalars(select(Asset).where(Asset.kind == KEY))}
        lendable = {a.name: a.quantity for a in s.scalars(select(Asset).where(Asset.lendable))}
        supplies = {x.name: (x.stock, x.reorder_level) for x in s.scalars(select(Supply))}
    assert keys == {"科学室", "音乐室", "体育器材室"}
    assert lendable["篮球"] == 10 and "显微镜" in lendable and "电子琴" in lendable
    assert {"A4纸", "粉笔", "洗手液"} <= supplies.keys()
    assert all(reorder > 0 and stock > reorder for stock, reorder in supplies.values())  # none low on day one

    office = wechat_user("程财宝")
    stock = office.say("库存")
    assert all(name in stock.text for name in ("A4纸", "粉笔", "洗手液")), stock.text
    for room, key in (("科学室", "科学室门钥匙"), ("音乐室", "音乐室门钥匙"), ("体育器材室", "体育器材室钥匙")):
        held = office.say(f"钥匙 {room}")
        assert key in held.text, held.text
    taken = office.say("领钥匙 音乐室")
    assert "已领取 音乐室门钥匙" in taken.text, taken.text
    assert "程财宝" in office.say("钥匙 音乐室").text

    teacher = wechat_user("张丽")
    room = teacher.say("本室资产")
    assert "投影仪" in room.text and "空调" in room.text, room.text
    borrowed = teacher.say("借 篮球 2")
    assert "已借用" in borrowed.text and "篮球 ×2" in borrowed.text, borrowed.text


def test_the_demo_school_has_a_name_on_its_ledgers(services: Services, houqin, clock, tmp_path) -> None:
    """A ledger printed from the demo says whose it is: the title row starts with the school's name."""
    from openpyxl import load_workbook

    clock.set("2026-11-24 10:00")
    assert houqin("demo").exit_code == 0
    assert "龙城实验小学" in houqin("setting", "school_name").output
    out = tmp_path / "assets.xlsx"
    assert houqin("export", "assets", "--month", "2026-11", "--out", str(out)).exit_code == 0
    assert str(load_workbook(out).worksheets[0].cell(1, 1).value).startswith("龙城实验小学 资产台账")
