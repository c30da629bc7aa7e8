"""Supplies: 入库, 领用 with and without approval, 库存, the low-stock alert once under the reorder level,
and bad quantities or unknown items changing nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from handlers.assets.supplies import import_supplies
from models import Supply, SupplyMove

SUPPLIES = """物品,单位,库存,补货线,需审批,负责人
A4纸,包,10,5,否,程财宝
粉笔,盒,50,10,否,
墨盒,个,3,1,是,程财宝
"""


def stock(services, name: str) -> int:
    with services.factory() as s:
        return int(s.scalar(select(Supply.stock).where(Supply.name == name)))


def moves(services) -> list[tuple[str, str, int, str]]:
    with services.factory() as s:
        return [(m.code, m.kind, m.quantity, m.status) for m in s.scalars(select(SupplyMove).order_by(SupplyMove.id))]


def test_issue_stock_in_and_the_low_stock_alert(school, wechat_user, services, tmp_path: Path, queued) -> None:
    (tmp_path / "supplies.csv").write_text(SUPPLIES, encoding="utf-8")
    with services.factory() as s, s.begin():
        assert import_supplies(s, tmp_path / "supplies.csv") == 3
    teacher = wechat_user("张丽")
    reply = teacher.say("领用 A4纸 3 期末试卷")
    assert "已领用 L1：A4纸 3包（期末试卷），现库存 7包" in reply.text
    assert queued(kind="supply_low") == []
    assert "现库存 4包" in teacher.say("领用A4纸3包").text  # glued; under 5: the keeper is told once
    teacher.say("领用 A4纸 1")
    low = queued(kind="supply_low")
    assert [p.name for p in low] == ["程财宝"] and "A4纸 现库存 4包，低于补货线 5包" in low[0].text
    for said, answer in (("领用 A4纸 0", "数量"), ("领用 A4纸 -2", "数量"), ("领用 A4纸 100", "库存只有 3包"),
                         ("领用 胶水 1", "没有登记「胶水」"), ("领用 A4纸", "请写明数量")):
        assert answer in teacher.say(said).text, said
    assert stock(services, "A4纸") == 3
    assert "仅限" in teacher.say("入库 A4纸 20").text  # staff's
    assert "已入库 A4纸 20包，现库存 23包" in wechat_user("程财宝").say("入库 A4纸 20").text
    assert "A4纸 23包" in teacher.say("库存 A4纸").text
    listing = teacher.say("库存").text
    assert "粉笔 50盒" in listing and "墨盒 3个" in listing
    assert "（新登记的物品）" in wechat_user("程财宝").say("入库 胶水 5").text


def test_an_item_needing_approval_waits_for_its_keeper(school, wechat_user, services, tmp_path: Path,
                                                       queued) -> None:
    (tmp_path / "supplies.csv").write_text(SUPPLIES, encoding="utf-8")
    with services.factory() as s, s.begin():
        import_supplies(s, tmp_path / "supplies.csv")
    wechat_user("程财宝")
    reply = wechat_user("张丽").say("领用 墨盒 2 打印机")
    assert "已申请领用 L1" in reply.text and "需程财宝批准" in reply.text
    assert stock(services, "墨盒") == 3
    assert "批准 L1" in queued(kind="supply_request")[0].text
    assert "需由程财宝审批" in wechat_user("王强").say("批准 L1").text
    assert "已批准 L1" in wechat_user("程财宝").say("批准 L1").text
    assert stock(services, "墨盒") == 1
    assert "已处理过" in wechat_user("程财宝").say("驳回 L1").text
    assert [p.name for p in queued(kind="supply_decided")] == ["张丽"]
    assert moves(services) == [("L1", "out", 2, "done")]
