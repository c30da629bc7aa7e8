"""The school's voice in the console (issue 19): notices with their 回执 and 提醒未确认 (once), the 意见箱
with 回复 on the page, the 满意度测评 started, its results and XLSX. Every change is in the audit log; other
roles are refused; bad input gets a Chinese 400 and changes nothing."""

from __future__ import annotations

from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from models import AuditEntry, OfficeSurvey, OfficeSurveyComment, OfficeSurveyTally, Push, Suggestion
from tests.console.test_console_outbox import office  # noqa: F401 — the fixture
from tests.test_console import PASSWORD, csrf, sign_in


def audit(services, action: str) -> list[AuditEntry]:
    with services.factory() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def pushes(services) -> int:
    with services.factory() as s:
        return s.scalar(select(func.count()).select_from(Push)) or 0


def canteen_client(client: FlaskClient) -> FlaskClient:
    client.post("/admin/login", data={"csrf": csrf(client), "name": "宦欢", "password": PASSWORD})
    return client


def test_notices_show_their_receipts_and_remind_once(office, client: FlaskClient, services, wechat_user,  # noqa: F811
                                                     clock) -> None:
    sign_in(client)
    sent = client.post("/admin/outbox/compose", data={"csrf": csrf(client), "audience": "parents", "title": "防溺水告家长书",
                                                      "body": "请家长看护好孩子。", "confirm": "1", "action": "send"})
    assert sent.status_code == 302
    listed = client.get("/admin/notices").get_data(as_text=True)
    assert "N1" in listed and "防溺水告家长书" in listed and "0/2" in listed
    clock.set("2026-11-23 11:00")
    assert "已确认收到通知 N1" in wechat_user("陈建国").say("收到").text
    page = client.get("/admin/notices/1").get_data(as_text=True)
    assert "已确认 1/2" in page and "11-23 11:00" in page and "微信回复" in page and "提醒未确认（1 人，仅一次）" in page
    before = pushes(services)
    reminded = client.post("/admin/notices/1/remind", data={"csrf": csrf(client)})
    assert reminded.status_code == 302 and pushes(services) > before
    (entry,) = audit(services, "notice_remind")
    assert entry.target == "N1" and entry.actor == "周春明"
    assert "已于" in client.get("/admin/notices/1").get_data(as_text=True)
    after = pushes(services)
    again = client.post("/admin/notices/1/remind", data={"csrf": csrf(client)})
    assert again.status_code == 400 and "不再重复提醒" in again.get_data(as_text=True)
    assert pushes(services) == after and len(audit(services, "notice_remind")) == 1
    assert client.get("/admin/notices/9").status_code == 404


def test_suggestions_of_the_month_and_reply_on_the_page(office, client: FlaskClient, services,  # noqa: F811
                                                          wechat_user, queued) -> None:
    assert "Y1" in wechat_user("张丽").say("意见 食堂的饭菜太咸了").text
    assert "Y2" in wechat_user("陈建国").say("匿名意见 校车太挤了").text
    sign_in(client)
    page = client.get("/admin/suggestions").get_data(as_text=True)
    assert "食堂的饭菜太咸了" in page and "张丽" in page and "校车太挤了" in page and "匿名" in page
    assert "陈建国" not in page  # the anonymous sender is nowhere on the page
    assert "本月没有意见" in client.get("/admin/suggestions?month=2026-10").get_data(as_text=True)
    empty = client.post("/admin/suggestions/1/reply", data={"csrf": csrf(client), "text": "  "})
    assert empty.status_code == 400 and "请填写答复内容" in empty.get_data(as_text=True)
    assert audit(services, "suggestion_reply") == []
    replied = client.post("/admin/suggestions/1/reply", data={"csrf": csrf(client), "text": "已请食堂少放盐"})
    assert replied.status_code == 302
    with services.factory() as s:
        y1 = s.scalar(select(Suggestion).where(Suggestion.number == 1))
        assert y1.status == "answered" and y1.replies[0].text == "已请食堂少放盐" and y1.replies[0].name == "周春明"
    assert any(q.name == "张丽" and "已请食堂少放盐" in q.text for q in queued(kind="suggestion_reply"))
    assert [e.target for e in audit(services, "suggestion_reply")] == ["Y1"]
    assert "已请食堂少放盐" in client.get("/admin/suggestions").get_data(as_text=True)
    assert client.post("/admin/suggestions/99/reply", data={"csrf": csrf(client), "text": "x"}).status_code == 404
    assert client.get("/admin/suggestions?month=十一月").status_code == 400


def test_survey_started_results_and_xlsx(office, client: FlaskClient, services) -> None:  # noqa: F811
    sign_in(client)
    assert "还没有开始过后勤满意度测评" in client.get("/admin/survey").get_data(as_text=True)
    bad = client.post("/admin/survey/start", data={"csrf": csrf(client), "days": "abc"})
    assert bad.status_code == 400 and "1 到 60" in bad.get_data(as_text=True)
    wrong = client.post("/admin/survey/start", data={"csrf": csrf(client), "days": "7", "items": "食堂;保洁",
                                                     "parent_items": "校车"})
    assert wrong.status_code == 400 and "家长评价的项目必须在测评项目之中" in wrong.get_data(as_text=True)
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(OfficeSurvey)) == 0
    started = client.post("/admin/survey/start", data={"csrf": csrf(client), "days": "7"})
    assert started.status_code == 302
    (entry,) = audit(services, "survey_start")
    assert entry.target == "2026秋"
    with services.factory() as s, s.begin():
        survey = s.scalar(select(OfficeSurvey))
        assert (survey.opens_on.isoformat(), survey.closes_on.isoformat()) == ("2026-11-23", "2026-11-29")
        for level, count in ((5, 3), (4, 1), (2, 1)):
            s.add(OfficeSurveyTally(survey_id=survey.id, item="食堂", group="staff", level=level, count=count))
        s.add(OfficeSurveyTally(survey_id=survey.id, item="保洁", group="staff", level=5, count=2))
        s.add(OfficeSurveyComment(survey_id=survey.id, key="a1", item="食堂", group="staff", level=2, text="饭菜偏咸"))
        s.add(OfficeSurveyComment(survey_id=survey.id, key="a2", item="食堂", group="staff", level=4, text="饭菜太咸"))
    page = client.get("/admin/survey").get_data(as_text=True)
    assert "2026秋" in page and "80%" in page and "不足5份" in page and "饭菜偏咸" in page
    again = client.post("/admin/survey/start", data={"csrf": csrf(client), "days": "7"})
    assert again.status_code == 400 and "不能重复开始" in again.get_data(as_text=True)
    export = client.get("/admin/survey/export.xlsx")
    assert export.status_code == 200 and export.data[:2] == b"PK"
    import io

    sheet = load_workbook(io.BytesIO(export.data))["满意度"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[1][:3] == ["食堂", 5, "80%"]
    assert client.get("/admin/survey?period=2020春").status_code == 404


def test_other_roles_are_refused(office, client: FlaskClient, services) -> None:  # noqa: F811
    canteen_client(client)
    for url in ("/admin/notices", "/admin/suggestions", "/admin/survey", "/admin/survey/export.xlsx"):
        assert client.get(url).status_code == 403, url
    assert client.post("/admin/survey/start", data={"csrf": csrf(client), "days": "7"}).status_code == 403
    assert client.post("/admin/suggestions/1/reply", data={"csrf": csrf(client), "text": "x"}).status_code == 403
    with services.factory() as s:
        assert s.scalar(select(func.count()).select_from(OfficeSurvey)) == 0
