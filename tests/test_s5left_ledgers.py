"""通知回执台账 and 意见箱台账 are bot/ledgers.py ledgers like the others: `houqin export notices|suggestions`
(the old names) take --month or --term and write the same workbook the console's 台账 page offers."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from bot.export import read_ledger
from tests.test_console import PASSWORD, sign_in

CALENDAR = "日期,类型,备注\n2026-09-01,开学,\n2027-01-20,学期结束,\n"


def _office(people: Any, houqin: Any, wechat_user: Any, clock: Any, tmp_path: Path) -> None:
    """A notice and a suggestion in October, another of each in November, in the autumn term."""
    people.add("周春明", "admin")
    people.add("张丽", "teacher", class_name="三(2)班")
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    (tmp_path / "calendar.csv").write_text(CALENDAR, encoding="utf-8")
    assert houqin("calendar", "import", str(tmp_path / "calendar.csv")).exit_code == 0
    zhang = wechat_user("张丽")
    for day, title, idea in (("2026-10-20 10:00", "秋季消防演练", "希望多一些课间活动的器材"),
                             ("2026-11-24 10:00", "冬季用电安全", "走廊的灯晚上太暗")):
        clock.set(day)
        sent = houqin("notices", "send", "--to", "教师", "--title", title, "请各位老师阅知")
        assert sent.exit_code == 0, sent.output
        assert "Y" in zhang.say(f"意见 {idea}").text
    assert "已确认收到通知 N2" in zhang.say("收到 N2").text


def test_notices_and_suggestions_export_by_month_and_term_and_download_from_the_console(
        people: Any, houqin: Any, wechat_user: Any, clock: Any, tmp_path: Path, client: FlaskClient) -> None:
    _office(people, houqin, wechat_user, clock, tmp_path)
    month, term = tmp_path / "notices-11.xlsx", tmp_path / "notices-term.xlsx"
    done = houqin("export", "notices", "--month", "2026-11", "--out", str(month))
    assert done.exit_code == 0 and f"通知回执台账 2026年11月：1 行，{month}" in done.output, done.output
    done = houqin("export", "notices", "--term", "2026-11-24", "--out", str(term))
    assert done.exit_code == 0 and "通知回执台账 2026-2027学年第一学期：2 行" in done.output, done.output
    rows = read_ledger(term, "通知回执台账")
    assert rows[0][:3] == ("通知编号", "标题", "发送对象")
    assert [(r[0], r[1], r[6], r[9] is not None) for r in rows[1:]] == [
        ("N1", "秋季消防演练", "张丽", False), ("N2", "冬季用电安全", "张丽", True)]
    assert [r[0] for r in read_ledger(month, "通知回执台账")[1:]] == ["N2"]

    ideas = tmp_path / "suggestions-term.xlsx"
    done = houqin("export", "suggestions", "--term", "2026-10-01", "--out", str(ideas))
    assert done.exit_code == 0 and "意见箱台账 2026-2027学年第一学期：2 行" in done.output, done.output
    assert [r[6] for r in read_ledger(ideas, "意见箱台账")[1:]] == ["希望多一些课间活动的器材", "走廊的灯晚上太暗"]

    assert sign_in(client).endswith("/admin/")
    page = client.get("/admin/ledgers?month=2026-11").get_data(as_text=True)
    assert "通知回执台账" in page and "意见箱台账" in page
    for key, sheet, path in (("notices", "通知回执台账", term), ("suggestions", "意见箱台账", ideas)):
        res = client.get(f"/admin/ledgers/{key}.xlsx?term=2026-09-01")
        assert res.status_code == 200
        assert read_ledger(io.BytesIO(res.data), sheet) == read_ledger(path, sheet)  # the very same workbook


def test_a_bad_period_is_refused_in_chinese_and_writes_nothing(people: Any, houqin: Any, tmp_path: Path) -> None:
    out = tmp_path / "x.xlsx"
    for args, says in ((("--month", "2026-13"), "请写成 YYYY-MM"), (("--term", "2026-11-24"), "校历中没有包含 2026-11-24 的学期"),
                       ((), "请给出 --month YYYY-MM 或 --term YYYY-MM-DD")):
        for key in ("notices", "suggestions"):
            refused = houqin("export", key, *args, "--out", str(out))
            assert refused.exit_code != 0 and says in refused.output, refused.output
            assert not out.exists()
