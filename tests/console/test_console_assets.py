"""The console's 资产 pages with the asset tests' school (tests/handlers/assets/conftest.py): the register
filtered, an asset's file, loans and keys, supplies, the approvals answered with the chat's own 批准 / 驳回,
and a stocktake started and ended; every change audited, refusals and bad input changing nothing."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from handlers.assets.supplies import import_supplies
from models import Asset, AssetLoan, Disposal, Room, Stocktake, Supply, SupplyMove
from models.console import AuditEntry
from tests.handlers.assets.conftest import school
from tests.handlers.assets.test_asset_supplies import SUPPLIES
from tests.test_console import PASSWORD, csrf, sign_in

__all__ = ["school"]


def audited(services, action: str) -> list[tuple[str, str, str]]:
    with services.factory() as s:
        return [(e.actor, e.target, e.detail) for e in s.scalars(select(AuditEntry).where(AuditEntry.action == action))]


def table_rows(page: str) -> list[str]:
    return page.split("<tr>")[2:]


def state(services) -> tuple:
    with services.factory() as s:
        return (tuple(s.scalars(select(AssetLoan.status).order_by(AssetLoan.number))),
                tuple(s.scalars(select(SupplyMove.status).order_by(SupplyMove.number))),
                tuple(s.scalars(select(Disposal.status).order_by(Disposal.number))),
                tuple(s.scalars(select(Supply.stock).order_by(Supply.name))),
                s.scalar(select(func.count()).select_from(Stocktake)))


def test_asset_pages_and_approvals(school, houqin, wechat_user, services, clock, app: Flask, client: FlaskClient,
                                   tmp_path: Path) -> None:
    for name in ("周春明", "程财宝"):
        assert houqin("console-password", name, "--password", PASSWORD).exit_code == 0
    (tmp_path / "supplies.csv").write_text(SUPPLIES, encoding="utf-8")
    with services.factory() as s, s.begin():
        import_supplies(s, tmp_path / "supplies.csv")
    wang = wechat_user("王强")
    wang.say("借 篮球 2 周二")
    wang.say("领钥匙 科学室 门")
    assert "J3" in wechat_user("张丽").say("借 笔记本电脑").text  # waits for 殷奇 (or admin)
    assert "L1" in wang.say("领用 墨盒 1").text  # waits for 程财宝
    wang.say("领用 A4纸 6")  # 4 left: under the reorder level 5
    assert "BF1" in wechat_user("程财宝").say("报废 DJ-0302 灯泡老化").text
    clock.set("2026-11-25 09:00")

    sign_in(client)
    page = client.get("/admin/assets?room=科学室").get_data(as_text=True)
    assert "DJ-101" in page and "YS-KX1" in page and "TY-001" not in page
    page = client.get("/admin/assets?custodian=殷奇&category=电教").get_data(as_text=True)
    assert "DJ-101" in page and "DJ-0302" not in page
    assert "DJ-0302" in client.get("/admin/assets?status=在用").get_data(as_text=True)
    assert "DJ-0302" not in client.get("/admin/assets?status=已报废").get_data(as_text=True)
    assert client.get("/admin/assets?status=丢了").status_code == 400
    page = client.get("/admin/assets/TY-001").get_data(as_text=True)
    assert "J1" in page and "借出" in page and "王强" in page
    assert client.get("/admin/assets/NO-SUCH").status_code == 404

    page = client.get("/admin/asset-loans").get_data(as_text=True)
    assert "逾期 1 项" in page and "逾期1天" in page and "第1把 王强" in page
    page = client.get("/admin/supplies").get_data(as_text=True)
    assert page.index("A4纸") < page.index("粉笔") and "库存不足 1 种" in page

    page = client.get("/admin/asset-approvals").get_data(as_text=True)
    assert all(code in page for code in ("J3", "L1", "BF1"))
    token = csrf(client, "/admin/asset-approvals")
    before = state(services)
    assert client.post("/admin/asset-approvals/J3/decline", data={"reason": "已借给别人"}).status_code == 400  # no csrf
    assert client.post("/admin/asset-approvals/X9/approve", data={"csrf": token}).status_code == 400
    assert client.post("/admin/asset-approvals/J3/maybe", data={"csrf": token}).status_code == 404
    assert state(services) == before and audited(services, "asset_decline") == []

    res = client.post("/admin/asset-approvals/J3/decline", data={"csrf": token, "reason": "已借给别人"})
    assert res.status_code == 302
    assert "已驳回 J3" in client.get(res.headers["Location"]).get_data(as_text=True)
    assert client.post("/admin/asset-approvals/BF1/approve", data={"csrf": token}).status_code == 302
    with services.factory() as s:
        assert s.scalar(select(AssetLoan.status).where(AssetLoan.number == 3)) == "declined"
        assert s.scalar(select(Disposal.status)) == "approved"
    page = client.get("/admin/assets?status=已报废").get_data(as_text=True)
    assert "DJ-0302" in page and "TY-001" not in page
    assert "BF1" in client.get("/admin/assets/DJ-0302").get_data(as_text=True)
    assert audited(services, "asset_decline")[0][:2] == ("周春明", "J3")
    assert audited(services, "asset_approve")[0][1] == "BF1"

    staff = app.test_client()
    sign_in(staff, "程财宝")
    token = csrf(staff, "/admin/asset-approvals")
    res = staff.post("/admin/asset-approvals/L1/approve", data={"csrf": token})
    assert "已批准 L1" in staff.get(res.headers["Location"]).get_data(as_text=True)
    with services.factory() as s:
        assert s.scalar(select(Supply.stock).where(Supply.name == "墨盒")) == 2
    before = state(services)
    assert staff.post("/admin/stocktake/start", data={"csrf": token, "scope": "全校"}).status_code == 403
    assert state(services) == before


def test_a_stocktake_from_the_console(school, houqin, wechat_user, services, client: FlaskClient) -> None:
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    sign_in(client)
    token = csrf(client, "/admin/stocktake")
    res = client.post("/admin/stocktake/start", data={"csrf": token, "scope": "火星"})
    assert res.status_code == 400 and "「火星」不是全校、已登记的楼栋或房间" in res.get_data(as_text=True)
    assert client.post("/admin/stocktake/end", data={"csrf": token}).status_code == 400
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(Stocktake)) == 0

    res = client.post("/admin/stocktake/start", data={"csrf": token, "scope": "体育器材室"})
    assert "已开始盘点：体育器材室" in client.get(res.headers["Location"]).get_data(as_text=True)
    wechat_user("程财宝").say("盘点 体育器材室 QQ-1")
    assert "正在盘点：体育器材室" in client.get("/admin/stocktake").get_data(as_text=True)
    res = client.post("/admin/stocktake/end", data={"csrf": token})
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "盘点结束：体育器材室" in page and "上次盘点：体育器材室" in page
    assert [r for r in table_rows(page) if "缺失" in r and "TY-001" in r]
    assert [r for r in table_rows(page) if "未登记" in r and "QQ-1" in r]
    assert [a for a, _, _ in audited(services, "stocktake_start")] == ["周春明"]
    assert audited(services, "stocktake_end")[0][1] == "体育器材室"


def test_things_found_in_another_room_are_moved_in_one_step(school, houqin, wechat_user, services,
                                                             client: FlaskClient) -> None:
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    sign_in(client)
    token = csrf(client, "/admin/stocktake")
    client.post("/admin/stocktake/start", data={"csrf": token, "scope": "综合楼"})
    wechat_user("程财宝").say("盘点 科学室 TY-001 DJ-101")  # the basketballs are in the science room
    assert client.post("/admin/stocktake/1/moves", data={"csrf": token}).status_code == 400  # not ended yet
    client.post("/admin/stocktake/end", data={"csrf": token})
    page = client.get("/admin/stocktake").get_data(as_text=True)
    assert "把 1 件位置变动的资产登记调动到盘点房间" in page
    res = client.post("/admin/stocktake/1/moves", data={"csrf": token})
    assert "已登记调动：" in client.get(res.headers["Location"]).get_data(as_text=True)
    with services.factory() as s:
        assert s.scalar(select(Room.name).join(Asset, Asset.room_id == Room.id).where(Asset.code == "TY-001")) == "科学室"
    assert [t for _, t, _ in audited(services, "asset_move")] == ["TY-001"]
    assert "调动" in client.get("/admin/assets/TY-001").get_data(as_text=True)
    assert client.post("/admin/stocktake/1/moves", data={"csrf": token}).status_code == 400  # nothing left to move
    assert client.post("/admin/stocktake/99/moves", data={"csrf": token}).status_code == 404
