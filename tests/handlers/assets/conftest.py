"""The school of the asset tests: the 分工 of seeds/001 (程财宝 后勤, 周春明 admin), rooms with their
responsible people, and a register with things to lend (篮球 ×10), a thing lent only with approval, a
projector that is not lent, and keys."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.services import Services
from handlers.assets.register import import_assets
from handlers.repair.ledger import import_rooms
from models import Asset, AssetLoan, Room

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROOMS = """楼栋,楼层,房间,别名,负责人
教学楼,3,三(2)班,,张丽
教学楼,4,四(1)班,,王强
综合楼,1,体育器材室,器材室,程财宝
综合楼,2,科学室,科学教室;实验室,程财宝
"""
ASSETS = """编号,名称,类别,房间,保管人,购置日期,价格,状态,数量,可借,需审批,类型
DJ-0302,投影仪,电教,三(2)班,,2023-09-01,4800,在用,1,否,否,资产
TY-001,篮球,其他,体育器材室,程财宝,2024-03-01,120,在用,10,是,否,资产
DJ-101,笔记本电脑,电教,科学室,殷奇,2024-09-01,5200.50,在用,1,是,是,资产
YS-KX1,科学室门钥匙,门窗,科学室,程财宝,,,,3,是,否,钥匙
YS-KX2,科学室柜钥匙,门窗,科学室,程财宝,,,,1,是,否,钥匙
"""


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def school(people, services: Services, tmp_path: Path, clock):
    clock.set("2026-11-23 08:00")  # a Monday
    people.add("周春明", "admin")
    people.add("程财宝", "staff", categories="水电;门窗;桌椅;消防;安全;其他", phone="13800000002")
    people.add("殷奇", "staff", categories="电教")
    people.add("张丽", "teacher", class_name="三(2)班", phone="13800000011")
    people.add("王强", "teacher", class_name="四(1)班")
    people.add("陈建国", "parent")
    (tmp_path / "rooms.csv").write_text(ROOMS, encoding="utf-8")
    (tmp_path / "assets.csv").write_text(ASSETS, encoding="utf-8")
    with services.factory() as s, s.begin():
        import_rooms(s, tmp_path / "rooms.csv")
        import_assets(s, tmp_path / "assets.csv", now=services.now())
    return people


def asset_id(services: Services, code: str) -> int:
    with services.factory() as s:
        return int(s.scalar(select(Asset.id).where(Asset.code == code)))


def room_id(services: Services, name: str) -> int:
    with services.factory() as s:
        return int(s.scalar(select(Room.id).where(Room.name == name)))


def status_of(services: Services, code: str) -> str:
    with services.factory() as s:
        return str(s.scalar(select(Asset.status).where(Asset.code == code)))


def loans(services: Services) -> list[tuple[str, str, int, str]]:
    """(code, borrower, quantity, status) of every loan, in order."""
    with services.factory() as s:
        return [(loan.code, loan.borrower.name, loan.quantity, loan.status)
                for loan in s.scalars(select(AssetLoan).order_by(AssetLoan.id))]


def heard(fake_wechat, name: str, *needles: str) -> bool:
    return any(call.mentions(*needles) for call in fake_wechat.sent_to(name))


_event_times = itertools.count(1_800_000_000)


def scan(user, scene: str):
    """Scan a QR code; each scan its own CreateTime (WeChat takes two identical events in one second for
    a retry of one)."""
    return user.event("SCAN", scene, Ticket="ticket", CreateTime=next(_event_times))
