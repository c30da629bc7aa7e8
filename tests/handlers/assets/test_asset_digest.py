"""The daily digest's 资产 section (run by the real job with fixed clocks): overdue loans, keys out past
their day, low stock and the requests still waiting; nothing when all is in order."""

from __future__ import annotations

from pathlib import Path

from handlers.assets.supplies import import_supplies
from tests.conftest import at
from tests.handlers.assets.test_asset_supplies import SUPPLIES


def digest(runner, queued, when: str) -> str:
    runner.run_now("send_daily_digest", at(when))
    return [p.text for p in queued(kind="daily_digest")][-1]


def test_the_digest_lists_what_is_late_low_and_waiting(school, wechat_user, services, runner, queued,
                                                       tmp_path: Path) -> None:
    wechat_user("周春明")
    (tmp_path / "supplies.csv").write_text(SUPPLIES, encoding="utf-8")
    with services.factory() as s, s.begin():
        import_supplies(s, tmp_path / "supplies.csv")
    assert "■ 资产" not in digest(runner, queued, "2026-11-23 17:00")  # nothing out, nothing low

    wang = wechat_user("王强")
    wang.say("借 篮球 2 周二")
    wang.say("领钥匙 科学室 门")
    assert "J3" in wechat_user("张丽").say("借 笔记本电脑").text  # needs 殷奇's approval
    assert "L1" in wang.say("领用 墨盒 1").text  # needs the keeper's approval
    wang.say("领用 A4纸 6")  # 4 left, under the reorder level 5
    staff = wechat_user("程财宝")
    assert "BF1" in staff.say("报废 DJ-0302 灯泡老化").text

    text = digest(runner, queued, "2026-11-25 17:00")
    section = text.split("■ 资产\n")[1].split("■")[0]
    assert "逾期未还 1 项：J1 王强 篮球 ×2（逾期1天）" in section
    assert "钥匙逾期未还 1 把：科学室 科学室门钥匙 第1把 王强（逾期2天）" in section
    assert "库存不足 1 种：A4纸 4包（补货线 5）" in section
    assert "待审批 3 项：J3、L1、BF1" in section
