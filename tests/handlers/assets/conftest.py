"""The school of the asset tests: the 分工 of seeds/001 (程财宝 后勤, 周春明 admin), rooms with their
responsible people, and a register with things to lend (篮球 ×10), a thing lent only with approval, a
projector that is not lent, and keys."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.services import Services
from handlers.assets.register import import_assets
from models import Asset, AssetLoan
from tests.conftest import import_register, seeds_staff

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


@pytest.fixture
def school(people, services: Services, tmp_path: Path, clock):
    clock.set("2026-11-23 08:00")  # a Monday
    seeds_staff(people)
    import_register(services, tmp_path, ROOMS, ASSETS, import_assets, now=services.now())
    return people



def status_of(services: Services, code: str) -> str:
    with services.factory() as s:
        return str(s.scalar(select(Asset.status).where(Asset.code == code)))


def loans(services: Services) -> list[tuple[str, str, int, str]]:
    """(code, borrower, quantity, status) of every loan, in order."""
    with services.factory() as s:
        return [(loan.code, loan.borrower.name, loan.quantity, loan.status)
                for loan in s.scalars(select(AssetLoan).order_by(AssetLoan.id))]


_event_times = itertools.count(1_800_000_000)


def scan(user, scene: str):
    """Scan a QR code; each scan its own CreateTime (WeChat takes two identical events in one second for
    a retry of one)."""
    return user.event("SCAN", scene, Ticket="ticket", CreateTime=next(_event_times))
