"""The CLI speaks Chinese to the operator, like the bot to its users: its tables, and its own refusals
(each says what is wrong and what to do, and exits 1, or 2 for a malformed argument, having changed nothing)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from bot.services import Services
from models import Person


def test_cli_refusals_are_in_chinese(services: Services, people, houqin, tmp_path: Path) -> None:
    people.add("周春明", "admin")
    cases = [
        (("outbox", "retry", "999999"), 1, "没有编号为 999999 的投递（见 houqin outbox）"),
        (("export", "repairs", "--month", "2026-13", "--out", str(tmp_path / "r.xlsx")), 2,
         "--month 的值不对：请写成 YYYY-MM，例如 2026-11"),
        (("menu", "publish", "第49周"), 2, "WEEK 的值不对：请写成 YYYY-Www，例如 2026-W48"),
        (("menu", "publish", "2027-W05"), 1, "2027-W05 还没有导入菜单：请先运行 houqin menu import 文件"),
        (("demo",), 1, "数据库中已有人员：演示数据只能载入空数据库"),
        (("console-password", "不存在", "--password", "a-long-password-1"), 1, "没有名为「不存在」的人员"),
        (("chat",), 2, "请给出 --as 姓名 或 --openid OPENID"),
        (("qr", "rooms", "--out", str(tmp_path / "rooms.pdf")), 1, "还没有登记房间：请先导入（houqin rooms import 文件）"),
    ]
    for args, code, message in cases:
        result = houqin(*args)
        assert result.exit_code == code and f"错误：{message}" in result.output, (args, result.output)
    assert not (tmp_path / "r.xlsx").exists() and not (tmp_path / "rooms.pdf").exists()
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 1  # the demo loaded nothing


def test_codes_table_names_roles_in_chinese(people, houqin) -> None:
    people.add("宦欢", "admin", "canteen")
    people.add("李娜", "teacher", "bus_monitor")
    table = houqin("codes").output
    assert "管理员、食堂" in table and "教师、跟车老师" in table
    assert "admin" not in table and "bus_monitor" not in table


def test_codes_table_gives_the_expiry_on_the_schools_clock(people, houqin, clock) -> None:
    """A code issued at 08:00 in the school (00:00 UTC) lasts 14 days: the table says 08:00, as the --json's
    UTC moment, read in the school's timezone, does."""
    clock.set("2026-11-24 08:00")  # the school's time (Asia/Shanghai)
    people.add("张丽", "teacher")
    assert "2026-12-08 08:00" in houqin("codes").output
    assert json.loads(houqin("codes", "--json").stdout)[0]["expires_at"].startswith("2026-12-08T00:00")


def test_clicks_own_refusals_are_in_chinese_too(houqin) -> None:
    missing = houqin("codes", "reissue")
    assert missing.exit_code == 2 and "错误：缺少参数 'NAME'" in missing.output
    choice = houqin("outbox", "--status", "nope")
    assert choice.exit_code == 2 and "'--status' 的值不对：'nope' 不是可选的值" in choice.output
    unknown = houqin("nosuch")
    assert unknown.exit_code == 2 and "错误：没有命令 'nosuch'" in unknown.output
    for result in (missing, choice, unknown):
        assert "Error" not in result.output and "Usage" not in result.output
        assert "用法：" in result.output
    assert "显示本帮助并退出" in houqin("--help").output
