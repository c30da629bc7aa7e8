"""人员 in the console: search and filters, add and edit a person (Flask-WTF form, checked like the
import), 停用 (history kept), a new bind code, and import by upload: a preview by row (the CLI import's
own checks, rolled back) and nothing written until 确认导入."""

from __future__ import annotations

import io
import re

from flask.testing import FlaskClient
from sqlalchemy import func, select

from models import AuditEntry, Person, Student
from tests.test_console import PASSWORD, csrf, rows_of, sign_in

GOOD = "姓名,角色,手机,班级,负责类别\n殷奇,后勤,,,电教;水电\n王老师,教师,13900001111,三(1)班,\n李师傅,后勤,13900002222,,水电\n"
BAD = "姓名,角色,手机\n赵一,厨师,\n,教师,123\n"


def people_count(services) -> int:
    with services.factory() as s:
        return s.scalar(select(func.count()).select_from(Person)) or 0


def upload(client: FlaskClient, text: str, name: str = "people.csv", kind: str = "people"):
    return client.post("/admin/people/import", data={"csrf": csrf(client, "/admin/people/import"), "kind": kind,
                                                     "file": (io.BytesIO(text.encode()), name)},
                       content_type="multipart/form-data")


def test_import_previews_by_row_and_writes_only_on_confirm(office, client: FlaskClient, services) -> None:
    sign_in(client)
    before = people_count(services)
    preview = upload(client, GOOD)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "还没有写入" in page
    table = page[page.index('id="preview"'):page.index("</table>", page.index('id="preview"'))]
    rows = [" ".join(re.sub(r"<[^>]+>", " ", r).split()) for r in re.findall(r"<tr class=[^>]*>(.*?)</tr>", table, re.S)]
    assert rows == ["第2行 殷奇 修改", "第3行 王老师 新增", "第4行 李师傅 新增"]
    assert people_count(services) == before  # nothing written yet
    token = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    done = client.post("/admin/people/import/confirm", data={"csrf": csrf(client, "/admin/"), "kind": "people",
                                                             "token": token})
    assert done.status_code == 302
    assert people_count(services) == before + 2
    listing = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "已导入人员：新增 2，更新 1，未变 0" in listing
    again = client.post("/admin/people/import/confirm", data={"csrf": csrf(client, "/admin/"), "kind": "people",
                                                              "token": token})
    assert again.status_code == 410  # the upload is used once
    log = client.get("/admin/audit?action=people_import").get_data(as_text=True)
    assert "导入人员" in log and "新增 2" in log


def test_a_bad_file_lists_every_problem_by_row_and_imports_nothing(office, client: FlaskClient, services) -> None:
    sign_in(client)
    before = people_count(services)
    res = upload(client, BAD)
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and "没有导入任何数据" in page
    assert "第2行：不认识的角色「厨师」" in page and "第3行：姓名为空" in page and "第3行：手机号「123」格式不对" in page
    assert "确认导入" not in page and people_count(services) == before
    assert "请上传 CSV 或 XLSX" in upload(client, "x", name="people.txt").get_data(as_text=True)


def test_add_edit_deactivate_and_reissue(office, client: FlaskClient, services, wechat_user) -> None:
    sign_in(client)
    token = csrf(client, "/admin/people/new")
    bad = client.post("/admin/people/new", data={"csrf": token, "name": "刘芳", "phone": "12", "roles": ["teacher"]})
    assert bad.status_code == 400 and "手机号格式不对" in bad.get_data(as_text=True)
    none = client.post("/admin/people/new", data={"csrf": token, "name": "刘芳"})
    assert "请至少选一个角色" in none.get_data(as_text=True)
    res = client.post("/admin/people/new", data={"csrf": token, "name": "刘芳", "phone": "139 0000 3333",
                                                 "class_name": "二(1)班", "roles": ["teacher", "bus_monitor"]})
    assert res.status_code == 302
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    assert re.search(r"已添加 刘芳，绑定码 [A-Z0-9]{6}", page)
    with services.factory() as s:
        liu = s.scalar(select(Person).where(Person.name == "刘芳"))
        assert liu.phone == "13900003333" and liu.role_set == {"teacher", "bus_monitor"}
        yin_id = s.scalar(select(Person.id).where(Person.name == "殷奇"))
    assert rows_of(client.get("/admin/people?role=bus_monitor").get_data(as_text=True))[0].startswith("刘芳")
    assert len(rows_of(client.get("/admin/people?class=二(1)班").get_data(as_text=True))) == 1
    assert "没有人员" in client.get("/admin/people?q=不存在").get_data(as_text=True)

    edit = client.post(f"/admin/people/{liu.id}", data={"csrf": token, "name": "刘芳", "phone": "13900003333",
                                                        "class_name": "二(2)班", "roles": ["teacher"]})
    assert edit.status_code == 302
    with services.factory() as s:
        liu = s.get(Person, liu.id)
        assert liu.class_name == "二(2)班" and liu.role_set == {"teacher"}

    wechat_user("殷奇")  # bound
    reissued = client.post(f"/admin/people/{yin_id}/reissue", data={"csrf": token})
    assert "殷奇" in client.get(reissued.headers["Location"]).get_data(as_text=True)
    gone = client.post(f"/admin/people/{yin_id}/deactivate", data={"csrf": token})
    page = client.get(gone.headers["Location"]).get_data(as_text=True)
    assert "已停用 殷奇：角色（staff）已取消" in page or "已停用 殷奇" in page
    with services.factory() as s:
        yin = s.get(Person, yin_id)
        assert yin.role_set == set() and yin.deactivated_at is not None and not yin.openids
    assert not any(r.startswith("殷奇") for r in rows_of(client.get("/admin/people").get_data(as_text=True)))
    assert client.get("/admin/repairs/R1").status_code == 200  # the history stays
    log = client.get("/admin/audit").get_data(as_text=True)
    for words in ("添加人员", "修改人员", "二(1)班 → 二(2)班", "停用人员", "重发绑定码"):
        assert words in log, words


# -- students import: a preview by row with what changes, nothing written until 确认导入 -------------------------
STUDENTS = "姓名,班级,线路,站点\n陈小明,三(2)班,2号线,新北万达\n刘欣怡,三(2)班,1,龙城花园\n王小明,四(1)班,,\n"
STUDENTS_BAD = "姓名,班级,线路,站点\n陈小明,三(2)班,9号线,\n刘欣怡,三(2)班,1,新北万达\n,四(1)班,,\n刘欣怡,三(2)班,,\n"


def students_of(services) -> list[tuple[str, str, str, str]]:
    with services.factory() as s:
        return sorted((st.class_name, st.name, st.route, st.stop) for st in s.scalars(select(Student)))


def preview_rows(page: str) -> list[str]:
    table = page[page.index('id="preview"'):page.index("</table>", page.index('id="preview"'))]
    return [" ".join(re.sub(r"<[^>]+>", " ", r).split()) for r in re.findall(r"<tr class=[^>]*>(.*?)</tr>", table, re.S)]


def with_routes(office, services, tmp_path) -> None:
    from handlers.bus import import_routes
    from tests.handlers.test_bus import ROUTES_CSV

    (tmp_path / "routes.csv").write_text(ROUTES_CSV, encoding="utf-8")
    with services.factory() as s, s.begin():
        import_routes(s, tmp_path / "routes.csv")
    office.student("陈小明", "三(2)班", route="1", stop="龙城花园")
    office.student("刘欣怡", "三(2)班", route="1", stop="龙城花园")


def test_students_import_previews_adds_changes_and_unchanged_then_confirms(office, client: FlaskClient, services,
                                                                            tmp_path) -> None:
    with_routes(office, services, tmp_path)
    sign_in(client)
    before = students_of(services)
    preview = upload(client, STUDENTS, name="students.csv", kind="students")
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "还没有写入" in page and "新增 <b class=\"added\">1</b>" in page
    assert preview_rows(page) == ["第2行 三(2)班陈小明 修改 线路：1号线→2号线；站点：龙城花园→新北万达",
                                  "第3行 三(2)班刘欣怡 未变", "第4行 四(1)班王小明 新增"]
    assert students_of(services) == before  # nothing written yet
    token = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    done = client.post("/admin/people/import/confirm", data={"csrf": csrf(client, "/admin/"), "kind": "students",
                                                             "token": token})
    assert done.status_code == 302
    assert "已导入学生：新增 1，更新 1，未变 1" in client.get(done.headers["Location"]).get_data(as_text=True)
    assert students_of(services) == [("三(2)班", "刘欣怡", "1", "龙城花园"), ("三(2)班", "陈小明", "2", "新北万达"),
                                     ("四(1)班", "王小明", "", "")]
    with services.factory() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "students_import"))
        assert entry.actor == "周春明" and entry.detail == "新增 1，更新 1，未变 1"


def test_students_import_lists_every_problem_by_row_and_writes_nothing(office, client: FlaskClient, services,
                                                                       tmp_path, app, houqin) -> None:
    with_routes(office, services, tmp_path)
    sign_in(client)
    before = students_of(services)
    res = upload(client, STUDENTS_BAD, name="students.csv", kind="students")
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and "这个文件有 4 处问题，没有导入任何数据" in page
    for words in ("第2行：线路「9号线」不存在（已有线路：1号线、2号线）", "第3行：站点「新北万达」不在1号线上",
                  "第4行：姓名为空", "第5行：与第3行重复（同名同班）"):
        assert words in page, words
    assert "确认导入" not in page and students_of(services) == before
    with services.factory() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "students_import")) is None
    office.add("宦欢", "canteen")
    assert houqin("console-password", "宦欢", "--password", PASSWORD).exit_code == 0
    canteen = app.test_client()
    sign_in(canteen, "宦欢")
    assert canteen.get("/admin/people/import?kind=students").status_code == 403
    assert canteen.post("/admin/people/import", data={"csrf": csrf(canteen, "/admin/account"), "kind": "students",
                                                      "file": (io.BytesIO(STUDENTS.encode()), "s.csv")},
                        content_type="multipart/form-data").status_code == 403
    assert students_of(services) == before
def test_people_are_paged_by_100_with_the_search_and_filters_kept(office, client: FlaskClient, services) -> None:
    """105 teachers of 一(1)班 found by a search: page 1 holds 100 of them and a 下一页 link with the same
    search, role and class; page 2 the last 5 and 上一页; past the end is the last page; a bad page is
    refused in Chinese. Students are paged the same way."""
    from html import unescape
    from urllib.parse import parse_qs, urlsplit

    from models import PersonRole, Student

    with services.factory() as s, s.begin():
        s.add_all(Person(name=f"测试老师{i:03d}", class_name="一(1)班", roles=[PersonRole(role="teacher")])
                  for i in range(105))
        s.add_all(Student(name=f"学生{i:03d}", class_name="一(1)班") for i in range(101))
        s.add(Person(name="测试后勤", roles=[PersonRole(role="staff")]))  # found by the search, not by the role
    sign_in(client)
    first = client.get("/admin/people?q=测试&role=teacher&class=一(1)班").get_data(as_text=True)
    names = [r.split()[0] for r in rows_of(first)]
    assert names == [f"测试老师{i:03d}" for i in range(100)]
    assert "共 105 人，第 1–100 条（第 1/2 页）" in first and "上一页" not in first
    later = unescape(re.search(r'<a href="([^"]+)" rel="next">下一页</a>', first).group(1))
    assert parse_qs(urlsplit(later).query) == {"q": ["测试"], "role": ["teacher"], "class": ["一(1)班"], "page": ["2"]}
    second = client.get(later).get_data(as_text=True)
    assert [r.split()[0] for r in rows_of(second)] == [f"测试老师{i:03d}" for i in range(100, 105)]
    assert "共 105 人，第 101–105 条（第 2/2 页）" in second and "下一页" not in second
    earlier = unescape(re.search(r'<a href="([^"]+)" rel="prev">上一页</a>', second).group(1))
    assert parse_qs(urlsplit(earlier).query)["page"] == ["1"] and "q=" in earlier
    assert "第 2/2 页" in client.get("/admin/people?q=测试&role=teacher&page=9").get_data(as_text=True)
    for bad in ("0", "x", "-1"):
        refused = client.get(f"/admin/people?page={bad}")
        assert refused.status_code == 400 and "请求的参数不对" in refused.get_data(as_text=True), bad

    students = client.get("/admin/people?show=students&class=一(1)班").get_data(as_text=True)
    assert len(rows_of(students)) == 100 and "共 101 名学生" in students
    nxt = unescape(re.search(r'<a href="([^"]+)" rel="next">下一页</a>', students).group(1))
    assert parse_qs(urlsplit(nxt).query) == {"show": ["students"], "class": ["一(1)班"], "page": ["2"]}
    assert [r.split()[0] for r in rows_of(client.get(nxt).get_data(as_text=True))] == ["学生100"]


def test_abandoned_import_previews_older_than_a_day_are_removed_by_the_next_preview(office, client: FlaskClient,
                                                                                   services) -> None:
    """A preview never confirmed leaves its upload in instance/uploads; the next preview removes those
    older than a day (by the app's clock), keeps younger ones and every other file, and the old token
    is then answered as gone."""
    import os
    from datetime import timedelta

    folder = services.settings.instance_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    now = services.now().timestamp()
    old = folder / "people-0123456789abcdef0123456789abcdef.csv"
    young = folder / "students-fedcba9876543210fedcba9876543210.xlsx"
    other = folder / "readme.txt"
    for path, age in ((old, timedelta(days=1, minutes=5)), (young, timedelta(hours=23)), (other, timedelta(days=30))):
        path.write_text(GOOD)
        os.utime(path, (now - age.total_seconds(),) * 2)
    sign_in(client)
    preview = upload(client, GOOD)
    assert preview.status_code == 200 and "还没有写入" in preview.get_data(as_text=True)
    assert not old.exists() and young.exists() and other.exists()
    new = [p.name for p in folder.glob("people-*")]
    assert len(new) == 1 and new[0] != old.name  # the new preview's own file stays for 确认导入
    gone = client.post("/admin/people/import/confirm", data={"csrf": csrf(client, "/admin/"), "kind": "people",
                                                             "token": "0123456789abcdef0123456789abcdef"})
    assert gone.status_code == 410 and "已失效" in gone.get_data(as_text=True)
