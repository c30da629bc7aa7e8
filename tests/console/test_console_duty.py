"""值日 in the console: today's duties with their check-ins, the weekly roster saved from the grid (one
wrong name refuses the grid and changes nothing), dated overrides, the month's missed duties, posts with
their QR codes."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from models import AuditEntry
from models.duty import DutyOverride, DutyPost, DutyRoster
from tests.handlers.test_duty import school  # noqa: F401  (posts 一楼东楼梯 and 校门口; 张丽 and 王强 on Mondays)
from tests.test_console import PASSWORD, csrf, sign_in


@pytest.fixture
def office(school, houqin):  # noqa: F811
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    return school


def roster(services) -> set[tuple[int, str, str, str]]:
    with services.factory() as s:
        return {(r.weekday, r.slot, r.post.name, r.person.name) for r in s.scalars(select(DutyRoster))}


def grid_form(page: str) -> dict[str, str]:
    """Every cell of the roster grid as the browser would send it back."""
    return dict(re.findall(r'<input type="text" list="teachers" name="(r-[^"]+)" value="([^"]*)"', page))


def test_duty_page_shows_today_roster_grid_and_posts(office, client: FlaskClient, wechat_user, clock) -> None:
    clock.set("2026-11-23 09:41")
    assert "已签到" in wechat_user("张丽").say("签到 一楼东楼梯").text
    sign_in(client)
    page = client.get("/admin/duty").get_data(as_text=True)
    assert re.search(r"<td>课间</td><td>一楼东楼梯</td><td>张丽</td>\s*<td>张丽 09:41 文字（未验证） · 迟到", page)
    assert "<td>午间</td><td>校门口</td><td>王强</td>" in page and "未签到" in page
    cells = grid_form(page)
    assert len(cells) == 5 * 3 * 2 and sorted(v for v in cells.values() if v) == ["张丽", "王强"]
    assert "未生成（点「生成并下载岗位二维码」，或 houqin qr posts" in page


def test_roster_grid_saves_and_refuses_a_wrong_name_whole(office, client: FlaskClient, services) -> None:
    sign_in(client)
    cells = grid_form(client.get("/admin/duty").get_data(as_text=True))
    with services.factory() as s:
        gate = s.scalar(select(DutyPost.id).where(DutyPost.name == "校门口"))
    monday_noon_gate, tuesday_noon_gate = f"r-0-1-{gate}", f"r-1-1-{gate}"
    assert cells[monday_noon_gate] == "王强"
    before = roster(services)
    bad = client.post("/admin/duty/roster", data={**cells, "csrf": csrf(client, "/admin/duty"),
                                                  tuesday_noon_gate: "张丽", monday_noon_gate: "李四"})
    assert bad.status_code == 400 and "周一午间「校门口」" in bad.get_data(as_text=True)
    assert roster(services) == before
    done = client.post("/admin/duty/roster", data={**cells, "csrf": csrf(client, "/admin/duty"),
                                                   tuesday_noon_gate: "张丽", monday_noon_gate: ""})
    assert done.status_code == 302
    assert "值日表已保存：改动 2 处。" in client.get("/admin/duty").get_data(as_text=True)
    assert roster(services) == {(0, "课间", "一楼东楼梯", "张丽"), (1, "午间", "校门口", "张丽")}
    with services.factory() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "duty_roster"))
        assert "周一午间校门口：王强→（空）" in entry.detail and "周二午间校门口：（空）→张丽" in entry.detail


def test_overrides_added_and_removed(office, client: FlaskClient, services) -> None:
    sign_in(client)
    with services.factory() as s:
        gate = s.scalar(select(DutyPost.id).where(DutyPost.name == "校门口"))
    form = {"csrf": csrf(client, "/admin/duty"), "day": "2026-11-30", "slot": "午间", "post": str(gate),
            "teacher": "张丽", "note": "王强外出培训"}
    for change, words in (({"day": "2026-11-20"}, "已经过去"), ({"day": "明天"}, "日期「明天」不对"),
                          ({"slot": "夜间"}, "时段「夜间」不在设置的时段中"), ({"teacher": "李四"}, "李四"),
                          ({"teacher": ""}, "请填写值日教师")):
        res = client.post("/admin/duty/overrides", data={**form, **change})
        assert res.status_code == 400 and words in res.get_data(as_text=True), change
    res = client.post("/admin/duty/overrides", data=form)
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "已安排 2026-11-30 午间 校门口：张丽。" in page and "王强外出培训" in page
    with services.factory() as s:
        over = s.scalar(select(DutyOverride))
        assert over.person.name == "张丽"
    res = client.post(f"/admin/duty/overrides/{over.id}/delete", data={"csrf": csrf(client, "/admin/duty")})
    assert "已删除 2026-11-30 午间 校门口 的调整" in client.get(res.headers["Location"]).get_data(as_text=True)
    with services.factory() as s:
        assert s.scalar(select(DutyOverride)) is None


def test_missed_duties_of_the_month(office, client: FlaskClient, runner, clock) -> None:
    from tests.handlers.test_duty import at

    runner.run_now("remind_duty", at("2026-11-23 09:30"))
    runner.run_now("record_missed_duty", at("2026-11-23 10:05"))
    sign_in(client)
    page = client.get("/admin/duty?month=2026-11").get_data(as_text=True)
    assert "2026年11月缺岗" in page and re.search(r"<td>张丽</td><td>1</td><td>0</td><td>0</td><td class=\"alarm\">1</td>", page)
    assert "本月没有缺岗" in client.get("/admin/duty?month=2026-10").get_data(as_text=True)


# -- posts added, renamed, 停用; their QR sheet --------------------------------------------------------------
def posts(services) -> list[tuple[str, bool]]:
    with services.factory() as s:
        return [(p.name, p.stopped_at is None) for p in s.scalars(select(DutyPost).order_by(DutyPost.id))]


def audit(services, action: str) -> list[str]:
    with services.factory() as s:
        return [f"{e.actor}|{e.target}|{e.detail}" for e in s.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                                                         .order_by(AuditEntry.id))]


def test_posts_added_renamed_and_stopped(office, client: FlaskClient, services, wechat_user) -> None:
    sign_in(client)
    before = posts(services)
    for form, words in (({"name": ""}, "请填写岗位名称。"), ({"name": "校门口"}, "已有岗位「校门口」。"),
                        ({"name": "岗" * 65}, "岗位名称太长了：最多 64 个字。")):
        res = client.post("/admin/duty/posts", data={"csrf": csrf(client, "/admin/duty"), **form})
        assert res.status_code == 400 and words in res.get_data(as_text=True), form
    assert client.post("/admin/duty/posts", data={"name": "二楼西楼梯"}).status_code == 400  # no CSRF token
    with services.factory() as s:
        gate = s.scalar(select(DutyPost.id).where(DutyPost.name == "校门口"))
    res = client.post(f"/admin/duty/posts/{gate}/stop", data={"csrf": csrf(client, "/admin/duty")})
    assert res.status_code == 400 and "岗位「校门口」还在值日表或今后的调整中（1 处：周一午间），请先清空，再停用。" in res.get_data(as_text=True)
    assert posts(services) == before and audit(services, "duty_post_add") == []

    res = client.post("/admin/duty/posts", data={"csrf": csrf(client, "/admin/duty"), "name": "二楼西楼梯"})
    assert "已添加岗位「二楼西楼梯」" in client.get(res.headers["Location"]).get_data(as_text=True)
    with services.factory() as s:
        west = s.scalar(select(DutyPost.id).where(DutyPost.name == "二楼西楼梯"))
    res = client.post(f"/admin/duty/posts/{west}/rename", data={"csrf": csrf(client, "/admin/duty"), "name": "校门口"})
    assert res.status_code == 400 and "已有岗位「校门口」。" in res.get_data(as_text=True)
    res = client.post(f"/admin/duty/posts/{west}/rename", data={"csrf": csrf(client, "/admin/duty"), "name": "二楼西侧楼梯"})
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "岗位「二楼西楼梯」已改名为「二楼西侧楼梯」" in page and grid_form(page).get(f"r-0-0-{west}") == ""
    res = client.post(f"/admin/duty/posts/{west}/stop", data={"csrf": csrf(client, "/admin/duty")})
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "岗位「二楼西侧楼梯」已停用" in page and f"r-0-0-{west}" not in grid_form(page)
    assert posts(services) == [*before, ("二楼西侧楼梯", False)]
    assert "没有找到岗位「二楼西侧楼梯」" in wechat_user("张丽").say("签到 二楼西侧楼梯").text
    assert client.post(f"/admin/duty/posts/{west}/rename", data={"csrf": csrf(client, "/admin/duty"),
                                                                 "name": "x"}).status_code == 404
    assert audit(services, "duty_post_add")[0].startswith("周春明|二楼西楼梯|")
    assert audit(services, "duty_post_rename") == ["周春明|二楼西侧楼梯|二楼西楼梯→二楼西侧楼梯"]
    assert len(audit(services, "duty_post_stop")) == 1


def test_post_qr_sheet_downloaded_as_the_cli_makes_it(office, client: FlaskClient, services, fake_wechat) -> None:
    sign_in(client)
    client.post("/admin/duty/posts", data={"csrf": csrf(client, "/admin/duty"), "name": "二楼西楼梯"})
    with services.factory() as s:
        west = s.scalar(select(DutyPost.id).where(DutyPost.name == "二楼西楼梯"))
        ids = {p.name: p.id for p in s.scalars(select(DutyPost))}
    client.post(f"/admin/duty/posts/{west}/stop", data={"csrf": csrf(client, "/admin/duty")})
    res = client.post("/admin/duty/posts/qr.pdf", data={"csrf": csrf(client, "/admin/duty")})
    assert res.status_code == 200 and res.mimetype == "application/pdf" and res.data.startswith(b"%PDF")
    assert "attachment" in res.headers["Content-Disposition"]
    scenes = [c.body["action_info"]["scene"]["scene_str"] for c in fake_wechat.calls if c.endpoint == "qrcode/create"]
    assert sorted(scenes) == sorted(f"post:{ids[n]}" for n in ("一楼东楼梯", "校门口"))  # not the stopped post
    page = client.get("/admin/duty").get_data(as_text=True)
    assert f'src="/admin/duty/posts/{ids["校门口"]}/qr.svg"' in page
    again = client.post("/admin/duty/posts/qr.pdf", data={"csrf": csrf(client, "/admin/duty")})
    assert again.status_code == 200 and len([c for c in fake_wechat.calls if c.endpoint == "qrcode/create"]) == 2
    assert [a.split("|")[2] for a in audit(services, "duty_qr_sheet")] == ["2 个二维码（新建 2 个），1 页",
                                                                           "2 个二维码（新建 0 个），1 页"]
    assert client.post("/admin/duty/posts/qr.pdf").status_code == 400  # no CSRF token


def test_post_actions_refuse_other_roles(office, app, services, houqin) -> None:
    office.add("宦欢", "canteen")
    office.add("局里的人", "bureau")
    with services.factory() as s:
        gate = s.scalar(select(DutyPost.id).where(DutyPost.name == "校门口"))
    before = posts(services)
    for name in ("宦欢", "局里的人"):
        assert houqin("console-password", name, "--password", PASSWORD).exit_code == 0
        other = app.test_client()
        sign_in(other, name)
        token = csrf(other, "/admin/account")
        for path, form in (("/admin/duty/posts", {"name": "二楼"}), (f"/admin/duty/posts/{gate}/rename", {"name": "大门"}),
                           (f"/admin/duty/posts/{gate}/stop", {}), ("/admin/duty/posts/qr.pdf", {})):
            assert other.post(path, data={"csrf": token, **form}).status_code == 403, (name, path)
    bureau = app.test_client()
    sign_in(bureau, "局里的人")
    page = bureau.get("/admin/duty").get_data(as_text=True)
    assert "校门口" in page and "添加岗位</button>" not in page and "（PDF）</button>" not in page
    assert posts(services) == before and audit(services, "duty_qr_sheet") == []
