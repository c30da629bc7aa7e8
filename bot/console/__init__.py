"""The admin console under /admin, one module per area mirroring handlers/: auth (signing in), today
(今日), repair (报修), assets (资产), canteen (食堂), outbox (推送), people (人员), ledgers (台账),
settings (设置), tasks (行事历), voice (通知回执, 意见箱, 满意度测评), county (区县概览), audit (操作记录). The blueprint, the one
accessor for the request's Services (`base.services()`) and the shared checks live in base.py; importing
an area's module registers its pages on the blueprint, so each is listed here once."""

from bot.console import (
    assets,
    audit,
    auth,
    bus,
    calendar,
    canteen,
    county,
    duty,
    ledgers,
    outbox,
    people,
    repair,
    settings,
    tasks,
    today,
    voice,
)
from bot.console.auth import BAD_LOGIN, DUMMY_HASH, NOT_ADMIN, set_password
from bot.console.base import LOCKED, bp

__all__ = [
    "BAD_LOGIN",
    "DUMMY_HASH",
    "LOCKED",
    "NOT_ADMIN",
    "assets",
    "audit",
    "auth",
    "bp",
    "bus",
    "calendar",
    "canteen",
    "county",
    "duty",
    "ledgers",
    "outbox",
    "people",
    "repair",
    "set_password",
    "settings",
    "tasks",
    "today",
    "voice",
]
