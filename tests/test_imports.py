"""`houqin people import`, `houqin students import` and `houqin codes --json`, run as the real CLI
against a SQLite file: CSV and XLSX, Chinese and English headers, role spellings, all-or-nothing
validation with row numbers, idempotent re-imports, and the codes JSON contract."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.cli import main
from bot.db import make_engine
from models import BusRoute, DutyOverride, MenuItem, Person, Student
from models.safety import Drill

REPO = Path(__file__).resolve().parent.parent
SETTING_NAMES = ("WECHAT_TOKEN", "WECHAT_APPID", "WECHAT_SECRET", "WECHAT_AES_KEY", "WECHAT_AES_KEY_PREVIOUS",
                 "WECHAT_API_BASE", "DATABASE_URL", "HOUQIN_TZ", "HOUQIN_SECRET_KEY", "HOUQIN_INSTANCE",
                 "HOUQIN_TEMPLATES", "REDIS_URL")
CODE = re.compile(r"[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}")

PEOPLE_CN = [
    ["姓名", "角色", "手机", "班级", "线路", "负责类别"],
    ["周春明", "管理员", "13800000001", "", "", ""],
    ["程财宝", "后勤;管理员", "13800000002", "", "", "水电;门窗"],
    ["王芳", "教师、跟车老师", "138-0000-0003", "三(2)班", "1", ""],
    ["宦欢", "食堂，家长", "13800000004", "", "", ""],
    ["李雷", "teacher bus_monitor", "13800000005", "", "", ""],
    ["韩梅", "Teacher；Canteen", "", "", "", ""],
    ["殷奇", "后勤 , 教师", "13800000007", "", "", "电教、水电"],
]
PEOPLE_ROLES = {
    "周春明": ["admin"],
    "程财宝": ["admin", "staff"],
    "王芳": ["teacher", "bus_monitor"],
    "宦欢": ["canteen", "parent"],
    "李雷": ["teacher", "bus_monitor"],
    "韩梅": ["teacher", "canteen"],
    "殷奇": ["staff", "teacher"],
}
PEOPLE_EN = [
    ["Name", "Roles", "Phone", "Class", "Route", "Categories"],
    ["Zhou", "admin", 13900000001, "", "", ""],
    ["程师傅", "staff、admin", 13900000002, "", "", "水电 门窗"],
    ["张丽", "教师；家长", "13900000003", "三(2)班", 2, ""],
    ["Li", "bus_monitor, teacher", None, None, 3, None],
]
STUDENTS_CN = [
    ["姓名", "班级", "线路", "站点"],
    ["陈小明", "三(2)班", "1", "龙城花园"],
    ["刘欣怡", "三(2)班", "1号线", "龙城花园"],
    ["陈小明", "一(1)班", "", ""],  # the same name in another class is another student
]
ROUTES = [  # the students above ride these: a students import refuses routes and stops not registered
    ["线路", "别名", "站点"],
    [1, "龙城线", "龙城花园"], [1, "", "青龙路口"], [2, "", "北门"], [3, "", "南门"],
]
STUDENTS_EN = [
    ["name", "class", "route", "stop"],
    ["Tom", "四(1)班", 2, "北门"],
    ["王小雨", "四（1）班", 3, "南门"],
]


def with_routes(houqin: Callable[..., Result], tmp_path: Path) -> None:
    assert houqin("routes", "import", str(write_csv(tmp_path / "routes.csv", ROUTES))).exit_code == 0


def write_csv(path: Path, rows: list[list[object]], encoding: str = "utf-8-sig") -> Path:
    out = io.StringIO()
    csv.writer(out).writerows([["" if v is None else v for v in row] for row in rows])
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A strict production-like environment on a temporary SQLite file; no `.env` in the way."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    values = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'houqin.db'}",
        "WECHAT_TOKEN": "houqinConfigToken42",
        "WECHAT_APPID": "wx0123456789abcdef",
        "WECHAT_SECRET": "0123456789abcdef0123456789abcdef",
        "HOUQIN_SECRET_KEY": "a-long-enough-secret-key-for-tests",
        "HOUQIN_INSTANCE": str(tmp_path / "instance"),
        "WECHAT_API_BASE": "http://127.0.0.1:9",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def houqin(env: dict[str, str], clock: Callable[[], datetime]) -> Callable[..., Result]:
    """`houqin ARGS...` on the test clock (2026-11-24 10:00 school time), so "today" is fixed."""
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False, obj={"clock": clock})

    return run


@pytest.fixture
def db(env: dict[str, str]) -> Iterator[Callable[[], Session]]:
    engine = make_engine(env["DATABASE_URL"])
    yield lambda: Session(engine)
    engine.dispose()


def codes(houqin: Callable[..., Result]) -> list[dict[str, object]]:
    result = houqin("codes", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


def by_name(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {f"{r['name']}/{r['kind']}": r for r in rows}


def people_rows(db: Callable[[], Session]) -> dict[str, Person]:
    with db() as s:
        return {p.name: p for p in s.scalars(select(Person))}


def students_rows(db: Callable[[], Session]) -> list[tuple[str, str, str, str]]:
    with db() as s:
        return sorted((st.name, st.class_name, st.route, st.stop) for st in s.scalars(select(Student)))


# -- people ------------------------------------------------------------------------------------------
def test_people_csv_with_chinese_headers_and_every_role_spelling(houqin, db, tmp_path):
    result = houqin("people", "import", str(write_csv(tmp_path / "people.csv", PEOPLE_CN)))

    assert result.exit_code == 0, result.output
    assert "新增 7" in result.output
    rows = by_name(codes(houqin))
    assert {k: v["roles"] for k, v in rows.items()} == {f"{n}/person": r for n, r in PEOPLE_ROLES.items()}
    people = people_rows(db)
    assert people["王芳"].phone == "13800000003" and people["王芳"].class_name == "三(2)班"
    assert people["王芳"].route == "1"
    assert people["程财宝"].category_list == ["水电", "门窗"]
    assert people["殷奇"].category_list == ["电教", "水电"]
    assert people["韩梅"].phone == ""


def test_people_xlsx_with_english_headers(houqin, db, tmp_path):
    result = houqin("people", "import", str(write_xlsx(tmp_path / "people.xlsx", PEOPLE_EN)))

    assert result.exit_code == 0, result.output
    roles = {k: v["roles"] for k, v in by_name(codes(houqin)).items()}
    assert roles == {"Zhou/person": ["admin"], "程师傅/person": ["admin", "staff"],
                     "张丽/person": ["teacher", "parent"], "Li/person": ["teacher", "bus_monitor"]}
    people = people_rows(db)
    assert people["Zhou"].phone == "13900000001"  # a number cell, read without ".0"
    assert people["张丽"].route == "2" and people["张丽"].class_name == "三(2)班"
    assert people["程师傅"].category_list == ["水电", "门窗"]
    assert people["Li"].phone == "" and people["Li"].route == "3"


def test_people_csv_in_gbk_as_excel_saves_it(houqin, tmp_path):
    path = write_csv(tmp_path / "people.csv", PEOPLE_CN[:3], encoding="gb18030")
    result = houqin("people", "import", str(path))
    assert result.exit_code == 0, result.output
    assert set(by_name(codes(houqin))) == {"周春明/person", "程财宝/person"}


def test_invalid_people_rows_stop_the_import_and_list_every_problem(houqin, db, tmp_path):
    rows = [
        ["姓名", "角色", "手机"],
        ["周春明", "管理员", "13800000001"],  # row 2: fine
        ["", "教师", "13800000002"],  # row 3: no name
        ["王芳", "校长", "13800000003"],  # row 4: unknown role
        ["李雷", "", "13800000004"],  # row 5: no role
        [],  # row 6: blank, skipped
        ["韩梅", "教师", "12ab"],  # row 7: bad phone
        ["周春明", "admin", "138 0000 0001"],  # row 8: the same person as row 2
        ["殷奇", "后勤", "13800000009"],  # row 9: fine
    ]
    result = houqin("people", "import", str(write_csv(tmp_path / "bad.csv", rows)))

    assert result.exit_code != 0
    problems = result.stderr
    for number, words in ((3, "姓名"), (4, "校长"), (5, "角色"), (7, "12ab"), (8, "第2行")):
        line = next((p for p in problems.splitlines() if f"第{number}行：" in p), "")
        assert words in line, (number, problems)
    assert "第2行：" not in problems and "第9行" not in problems and "第6行" not in problems
    assert codes(houqin) == [] and people_rows(db) == {}  # nothing imported


def test_invalid_xlsx_rows_are_numbered_as_the_spreadsheet_shows(houqin, db, tmp_path):
    rows = [["name", "roles"], ["Zhou", "admin"], ["Li", "principal"], ["Wang", "teacher"], [None, "staff"]]
    result = houqin("people", "import", str(write_xlsx(tmp_path / "bad.xlsx", rows)))
    assert result.exit_code != 0
    assert "第3行" in result.stderr and "principal" in result.stderr and "第5行" in result.stderr
    assert people_rows(db) == {}


def test_missing_header_column_is_reported(houqin, tmp_path):
    result = houqin("people", "import", str(write_csv(tmp_path / "bad.csv", [["姓名", "手机"], ["周春明", "1380"]])))
    assert result.exit_code != 0
    assert "第1行" in result.stderr and "角色" in result.stderr
    assert codes(houqin) == []


@pytest.mark.parametrize("name", ["missing.csv", "people.txt.gz"])
def test_unreadable_files_fail_cleanly(houqin, tmp_path, name):
    if name.endswith(".gz"):
        (tmp_path / name).write_bytes(b"\x1f\x8b")
    result = houqin("people", "import", str(tmp_path / name))
    assert result.exit_code != 0 and result.stderr.strip()


def test_a_failed_import_leaves_earlier_imports_alone(houqin, tmp_path):
    assert houqin("people", "import", str(write_csv(tmp_path / "people.csv", PEOPLE_CN))).exit_code == 0
    before = codes(houqin)
    bad = [*PEOPLE_CN, ["新老师", "校长", ""]]
    result = houqin("people", "import", str(write_csv(tmp_path / "bad.csv", bad)))
    assert result.exit_code != 0 and f"第{len(bad)}行" in result.stderr
    assert codes(houqin) == before


def test_reimporting_people_changes_nothing(houqin, db, tmp_path):
    csv_path = write_csv(tmp_path / "people.csv", PEOPLE_CN)
    assert houqin("people", "import", str(csv_path)).exit_code == 0
    first_codes, first_people = codes(houqin), people_rows(db)

    again = houqin("people", "import", str(csv_path))
    # the same people as a spreadsheet: same names and phones, so still the same people
    xlsx = houqin("people", "import", str(write_xlsx(tmp_path / "people.xlsx", PEOPLE_CN)))

    assert again.exit_code == 0 and "新增 0" in again.output and "更新 0" in again.output
    assert xlsx.exit_code == 0 and "新增 0" in xlsx.output and "更新 0" in xlsx.output
    assert codes(houqin) == first_codes
    now_people = people_rows(db)
    assert {n: (p.id, p.phone, sorted(p.role_set)) for n, p in now_people.items()} == {
        n: (p.id, p.phone, sorted(p.role_set)) for n, p in first_people.items()}


def test_reimport_with_changes_updates_in_place(houqin, db, tmp_path):
    assert houqin("people", "import", str(write_csv(tmp_path / "p.csv", PEOPLE_CN))).exit_code == 0
    first = by_name(codes(houqin))
    changed = [row[:] for row in PEOPLE_CN]
    changed[1][1] = "管理员;后勤"  # 周春明 gains staff
    result = houqin("people", "import", str(write_csv(tmp_path / "p2.csv", changed)))
    assert result.exit_code == 0 and "新增 0" in result.output and "更新 1" in result.output
    after = by_name(codes(houqin))
    assert after["周春明/person"]["roles"] == ["admin", "staff"]
    assert after["周春明/person"]["code"] == first["周春明/person"]["code"]  # same person, same code
    assert len(people_rows(db)) == len(PEOPLE_CN) - 1


# -- students ----------------------------------------------------------------------------------------
def test_students_csv_and_xlsx(houqin, db, tmp_path):
    with_routes(houqin, tmp_path)
    assert houqin("students", "import", str(write_csv(tmp_path / "s.csv", STUDENTS_CN))).exit_code == 0
    assert houqin("students", "import", str(write_xlsx(tmp_path / "s.xlsx", STUDENTS_EN))).exit_code == 0

    assert students_rows(db) == sorted([
        ("陈小明", "三(2)班", "1", "龙城花园"), ("刘欣怡", "三(2)班", "1", "龙城花园"), ("陈小明", "一(1)班", "", ""),
        ("Tom", "四(1)班", "2", "北门"), ("王小雨", "四(1)班", "3", "南门"),
    ])
    rows = codes(houqin)
    assert len(rows) == 5 and all(r["kind"] == "student" and r["roles"] == ["parent"] for r in rows)
    assert sorted(r["name"] for r in rows) == sorted(["陈小明", "刘欣怡", "陈小明", "Tom", "王小雨"])
    assert len({r["code"] for r in rows}) == 5


def test_invalid_student_rows_stop_the_import(houqin, db, tmp_path):
    with_routes(houqin, tmp_path)
    rows = [["姓名", "班级", "线路", "站点"], ["陈小明", "三(2)班", "1", "龙城花园"], ["刘欣怡", "", "1", ""],
            ["", "三(2)班", "", ""], ["陈小明", "三（2）班", "2", ""]]
    result = houqin("students", "import", str(write_csv(tmp_path / "bad.csv", rows)))
    assert result.exit_code != 0
    assert "第3行" in result.stderr and "班级" in result.stderr
    assert "第4行" in result.stderr and "第5行" in result.stderr and "第2行" in result.stderr  # 5 repeats 2
    assert students_rows(db) == [] and codes(houqin) == []


def test_reimporting_students_changes_nothing(houqin, db, tmp_path):
    with_routes(houqin, tmp_path)
    path = write_csv(tmp_path / "s.csv", STUDENTS_CN)
    assert houqin("students", "import", str(path)).exit_code == 0
    first_codes, first_rows = codes(houqin), students_rows(db)
    again = houqin("students", "import", str(path))
    assert again.exit_code == 0 and "新增 0" in again.output and "更新 0" in again.output
    assert codes(houqin) == first_codes and students_rows(db) == first_rows


# -- codes --json --------------------------------------------------------------------------------------
def test_codes_json_contract(houqin, tmp_path, clock):
    with_routes(houqin, tmp_path)
    assert houqin("people", "import", str(write_csv(tmp_path / "p.csv", PEOPLE_CN))).exit_code == 0
    assert houqin("students", "import", str(write_csv(tmp_path / "s.csv", STUDENTS_CN))).exit_code == 0
    now = clock()

    rows = codes(houqin)

    assert len(rows) == len(PEOPLE_CN) - 1 + len(STUDENTS_CN) - 1
    for row in rows:
        assert set(row) == {"name", "kind", "code", "roles", "expires_at"}, row
        assert row["kind"] in ("person", "student")
        assert isinstance(row["code"], str) and CODE.fullmatch(row["code"]), row
        assert isinstance(row["roles"], list) and all(isinstance(r, str) for r in row["roles"])
        expires = datetime.fromisoformat(str(row["expires_at"]))
        assert expires.tzinfo is not None
        assert abs(expires - (now + timedelta(days=14))) < timedelta(minutes=5)
    assert {r["kind"] for r in rows} == {"person", "student"}
    assert len({r["code"] for r in rows}) == len(rows)


def test_codes_json_on_an_empty_database_is_an_empty_array(houqin):
    result = houqin("codes", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_codes_table_without_json(houqin, tmp_path):
    assert houqin("people", "import", str(write_csv(tmp_path / "p.csv", PEOPLE_CN[:2]))).exit_code == 0
    result = houqin("codes")
    assert result.exit_code == 0 and "周春明" in result.output


def test_real_command_line_in_a_subprocess(env, tmp_path):
    """The same commands as an operator types them, in a fresh interpreter."""
    child_env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES} | env
    child_env["PYTHONPATH"] = str(REPO)

    def houqin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=tmp_path, env=child_env,
                              capture_output=True, text=True, timeout=120)

    imported = houqin("people", "import", str(write_xlsx(tmp_path / "p.xlsx", PEOPLE_CN)))
    routes = houqin("routes", "import", str(write_csv(tmp_path / "r.csv", ROUTES)))
    students = houqin("students", "import", str(write_csv(tmp_path / "s.csv", STUDENTS_CN)))
    bad = houqin("people", "import", str(write_csv(tmp_path / "bad.csv", [["姓名", "角色"], ["某人", "校长"]])))
    listed = houqin("codes", "--json")

    assert imported.returncode == 0, imported.stderr
    assert routes.returncode == 0, routes.stderr
    assert students.returncode == 0, students.stderr
    assert bad.returncode != 0 and "第2行" in bad.stderr and "校长" in bad.stderr
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["name"] for r in rows if r["kind"] == "person") == sorted(PEOPLE_ROLES)
    assert len([r for r in rows if r["kind"] == "student"]) == len(STUDENTS_CN) - 1


# -- dates and times, as Excel holds them and as people type them --------------------------------------
def test_excel_date_and_time_cells_are_read_by_every_dated_import(houqin, db, tmp_path):
    """A date typed into Excel is a date cell (openpyxl: datetime), a time a time cell."""
    assert houqin("people", "import", str(write_csv(tmp_path / "p.csv", PEOPLE_CN))).exit_code == 0
    assert houqin("posts", "import", str(write_csv(tmp_path / "posts.csv", [["岗位"], ["一楼东楼梯"]]))).exit_code == 0
    drills = write_xlsx(tmp_path / "drills.xlsx", [["日期", "时间", "类型"],
                                                   [datetime(2026, 12, 14), time(10, 5), "消防疏散"],
                                                   [date(2026, 12, 15), datetime(1899, 12, 30, 9, 30), "防震"]])
    duty = write_xlsx(tmp_path / "duty.xlsx", [["日期", "时段", "岗位", "教师"],
                                               [datetime(2026, 12, 14), "课间", "一楼东楼梯", "王芳"]])
    routes = write_xlsx(tmp_path / "routes.xlsx", [["线路", "站点", "上学时间", "放学时间"],
                                                   [1, "龙城花园", time(7, 5), time(16, 55)],
                                                   [1, "青龙路口", "7：25", "16:40"]])
    menu = write_xlsx(tmp_path / "menu.xlsx", [["日期", "餐次", "菜品"], [datetime(2026, 12, 14), "午餐", "米饭、青菜"]])

    results = [houqin(*command, str(path)) for command, path in
               ((("drills", "import"), drills), (("duty", "import"), duty), (("routes", "import"), routes),
                (("menu", "import"), menu))]

    assert [r.exit_code for r in results] == [0, 0, 0, 0], [r.output for r in results]
    with db() as s:
        assert sorted((d.day, d.at, d.kind) for d in s.scalars(select(Drill))) == [
            (date(2026, 12, 14), time(10, 5), "消防疏散"), (date(2026, 12, 15), time(9, 30), "防震")]
        assert [(o.day, o.person.name) for o in s.scalars(select(DutyOverride))] == [(date(2026, 12, 14), "王芳")]
        route = s.scalar(select(BusRoute))
        assert route is not None
        assert [(st.name, st.am_time, st.pm_time) for st in route.stops] == [
            ("龙城花园", "07:05", "16:55"), ("青龙路口", "07:25", "16:40")]
        assert [(m.day, m.meal) for m in s.scalars(select(MenuItem))] == [(date(2026, 12, 14), "午餐")]


@pytest.mark.parametrize("day, at", [("2026-12-14", "7:05"), ("2026/12/14", "07:05"), ("12月14日", "7：05"),
                                     ("2026年12月14日", "7:05:00"), ("2026-12-14 00:00:00", "07:05")])
def test_typed_dates_and_times_in_the_usual_forms(houqin, db, tmp_path, day, at):
    result = houqin("drills", "import", str(write_csv(tmp_path / "d.csv", [["日期", "时间", "类型"], [day, at, "消防"]])))
    assert result.exit_code == 0, result.output
    with db() as s:
        assert [(d.day, d.at) for d in s.scalars(select(Drill))] == [(date(2026, 12, 14), time(7, 5))]


def test_a_date_without_a_year_is_the_coming_one(houqin, db, tmp_path):
    """On 2026-11-24 (the test clock), 1月5日 is next January."""
    result = houqin("calendar", "import", str(write_csv(tmp_path / "c.csv", [["日期", "类型"], ["1月5日", "放假"],
                                                                          ["12月1日~12月2日", "放假"]])))
    assert result.exit_code == 0, result.output
    with db() as s:
        from models import CalendarDay

        assert sorted(c.day for c in s.scalars(select(CalendarDay))) == [
            date(2026, 12, 1), date(2026, 12, 2), date(2027, 1, 5)]


def test_bad_dates_and_times_are_refused_with_the_row(houqin, db, tmp_path):
    rows = [["日期", "时间", "类型"], ["2026-13-01", "7:05", "消防"], ["2026-12-14", "25:00", "消防"]]
    result = houqin("drills", "import", str(write_csv(tmp_path / "d.csv", rows)))
    assert result.exit_code != 0 and "第2行" in result.stderr and "第3行" in result.stderr
    with db() as s:
        assert s.scalars(select(Drill)).all() == []


@pytest.mark.parametrize("damage", ["truncated", "broken sheet", "not a zip"])
def test_a_corrupt_xlsx_is_a_clear_error_not_a_traceback(houqin, tmp_path, damage):
    import zipfile

    good = write_xlsx(tmp_path / "good.xlsx", PEOPLE_CN).read_bytes()
    bad = tmp_path / "bad.xlsx"
    if damage == "truncated":
        bad.write_bytes(good[: len(good) // 2])
    elif damage == "not a zip":
        bad.write_text("姓名,角色\n张丽,教师\n", encoding="utf-8")
    else:
        with zipfile.ZipFile(io.BytesIO(good)) as zin, zipfile.ZipFile(bad, "w") as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                zout.writestr(item, data[: len(data) // 2] if item.filename.endswith("sheet1.xml") else data)

    for command in (("people", "import"), ("drills", "import"), ("routes", "import")):
        result = houqin(*command, str(bad))
        assert result.exit_code != 0
        assert "无法读取 Excel 文件：" in result.stderr and "bad.xlsx" in result.stderr, result.stderr
        assert "Traceback" not in result.output


# -- routes and stops of the students --------------------------------------------------------------------
def test_students_on_unknown_routes_or_stops_are_refused_with_the_row_and_the_known_ones(houqin, db, tmp_path):
    with_routes(houqin, tmp_path)
    rows = [["姓名", "班级", "线路", "站点"], ["甲", "一(1)班", "9", "北门"], ["乙", "一(1)班", "1", "不存在站"],
            ["丙", "一(1)班", "", "北门"], ["丁", "一(1)班", "龙城线", "青龙路口"]]

    result = houqin("students", "import", str(write_csv(tmp_path / "s.csv", rows)))

    assert result.exit_code != 0
    assert "第2行：线路「9」不存在（已有线路：1号线、2号线、3号线）" in result.stderr
    assert "第3行：站点「不存在站」不在1号线上（1号线的站点：龙城花园、青龙路口）" in result.stderr
    assert "第4行：填写了站点「北门」但没有填写线路" in result.stderr
    assert "第5行" not in result.stderr and students_rows(db) == []
    fixed = houqin("students", "import", str(write_csv(tmp_path / "ok.csv", [rows[0], rows[4]])))
    assert fixed.exit_code == 0 and students_rows(db) == [("丁", "一(1)班", "1", "青龙路口")]  # the alias's route


def test_students_with_routes_before_any_route_is_imported_say_how_to_start(houqin, db, tmp_path):
    result = houqin("students", "import", str(write_csv(tmp_path / "s.csv", STUDENTS_CN)))
    assert result.exit_code != 0 and "已有线路：无（先运行 houqin routes import）" in result.stderr
    assert students_rows(db) == []


# -- namesakes ---------------------------------------------------------------------------------------------
NAMESAKES = [["姓名", "角色", "手机", "班级"], ["张丽", "管理员;教师", "13800000003", "三(2)班"],
             ["张丽", "教师", "", "四(1)班"], ["宦欢", "食堂", "13800000004", ""]]
ASK_WHICH = "有两位「张丽」：张丽（三(2)班，138****0003）、张丽（四(1)班）——请写 张丽 三(2)班 或手机号后四位"


def test_people_import_warns_about_namesakes_and_says_how_to_tell_them_apart(houqin, db, tmp_path):
    result = houqin("people", "import", str(write_csv(tmp_path / "p.csv", NAMESAKES)))

    assert result.exit_code == 0, result.output
    assert "⚠ 第2行：张丽（三(2)班，138****0003）与张丽（四(1)班）同名，已分开登记；指名时请写「张丽 三(2)班」" in result.output
    assert "⚠ 第3行：张丽（四(1)班）与张丽（三(2)班，138****0003）同名，已分开登记；指名时请写「张丽 四(1)班」" in result.output
    with db() as s:
        assert sorted(p.class_name for p in s.scalars(select(Person).where(Person.name == "张丽"))) == ["三(2)班", "四(1)班"]


def test_namesakes_nothing_tells_apart_are_refused(houqin, db, tmp_path):
    assert houqin("people", "import", str(write_csv(tmp_path / "p.csv", NAMESAKES[:2]))).exit_code == 0
    same = [NAMESAKES[0], ["张丽", "教师", "13900000003", "三(2)班"]]  # same class, same last four digits

    result = houqin("people", "import", str(write_csv(tmp_path / "same.csv", same)))

    assert result.exit_code != 0 and "第2行：张丽（三(2)班，139****0003）与张丽（三(2)班，138****0003）同名，班级和手机号都无法区分二人" \
        in result.stderr
    assert len(people_rows(db)) == 1


def test_console_password_asks_which_namesake(houqin, db, tmp_path):
    assert houqin("people", "import", str(write_csv(tmp_path / "p.csv", NAMESAKES))).exit_code == 0

    ambiguous = houqin("console-password", "张丽", "--password", "a-long-password")
    nobody = houqin("console-password", "不存在", "--password", "a-long-password")
    chosen = houqin("console-password", "张丽", "三(2)班", "--password", "a-long-password")
    by_phone = houqin("console-password", "张丽 0003", "--password", "a-long-password")

    assert ambiguous.exit_code == 1 and ambiguous.stderr.strip() == f"错误：{ASK_WHICH}"
    assert nobody.exit_code == 1 and nobody.stderr.strip() == "错误：没有名为「不存在」的人员"
    assert chosen.exit_code == 0 and by_phone.exit_code == 0, chosen.output + by_phone.output
    with db() as s:
        from models import ConsoleAccount

        (account,) = s.scalars(select(ConsoleAccount))
        assert s.get(Person, account.person_id).class_name == "三(2)班"  # type: ignore[union-attr]


# -- settings ------------------------------------------------------------------------------------------------
def test_settings_are_checked_against_the_school(houqin, tmp_path):
    assert houqin("people", "import", str(write_csv(tmp_path / "p.csv", NAMESAKES))).exit_code == 0
    refused = {
        ("bus_manager", "宦欢X"): "错误：bus_manager 不能设为「宦欢X」：没有名为「宦欢X」的人员",
        ("bus_manager", "张丽"): f"错误：bus_manager 不能设为「张丽」：{ASK_WHICH}",
        ("school_radius", "0"): "错误：school_radius 不能设为「0」：须为大于 0、不超过 10000 的数字（米）",
        ("school_radius", "-5"): "错误：school_radius 不能设为「-5」：须为大于 0、不超过 10000 的数字（米）",
        ("school_latitude", "200"): "错误：school_latitude 不能设为「200」：须为 -90 到 90 之间的度数（如 31.81），或留空",
        ("school_longitude", "东经"): "错误：school_longitude 不能设为「东经」：须为 -180 到 180 之间的度数（如 31.81），或留空",
        ("work_start", "25:00"): "错误：work_start 不能设为「25:00」：须为时间 HH:MM，例如 07:30",
        ("work_start", "18:00"): "错误：work_start 不能设为「18:00」：须早于 work_end（17:00）",
        ("repair_done_days", "0"): "错误：repair_done_days 不能设为「0」：须为大于 0、不超过 365 的数字",
        ("fire_check_day", "31"): "错误：fire_check_day 不能设为「31」：须为 1 到 28 的整数",
        ("fire_check_category", "消防"): "错误：fire_check_category 不能设为「消防」：没有人负责这个类别"
                                       "（已有：无，先在人员表中填写负责类别）",
        ("duty_slots", "课间"): "错误：duty_slots 不能设为「课间」：时段「课间」须写成 名称 HH:MM-HH:MM，例如 课间 09:40-10:00",
        ("repair_urgent_words", ";"): "错误：repair_urgent_words 不能设为「;」：至少要有一个词（分号分隔）",
        ("no_such_setting", "1"): "错误：没有设置项「no_such_setting」；可用：fire_check_day、",
    }
    for (key, value), told in refused.items():
        result = houqin("setting", key, value)
        assert result.exit_code == 1 and result.stderr.strip().startswith(told), (key, value, result.stderr)
    shown = houqin("setting").output
    assert "bus_manager = ''" in shown and "school_radius = '200'" in shown and "work_start = '07:30'" in shown

    assert houqin("setting", "work_start", "7:05").output.strip() == "work_start = '07:05'"
    assert houqin("setting", "bus_manager", "张丽", "三(2)班").output.strip() == "bus_manager = '张丽 三(2)班'"
    assert houqin("setting", "school_radius", "150.5").exit_code == 0
    assert houqin("setting", "bus_manager", "").output.strip() == "bus_manager = ''"  # nobody, on purpose


def test_the_bus_manager_named_among_namesakes_is_the_one_told(houqin, db, tmp_path):
    from bot.school import setting_person

    assert houqin("people", "import", str(write_csv(tmp_path / "p.csv", NAMESAKES))).exit_code == 0
    assert houqin("setting", "bus_manager", "张丽 四(1)班").exit_code == 0
    with db() as s:
        manager = setting_person(s, "bus_manager")
        assert manager is not None and manager.class_name == "四(1)班"


# -- errors in Chinese -----------------------------------------------------------------------------------------
def test_cli_errors_are_in_chinese(houqin, tmp_path):
    assert houqin("people", "import", str(write_csv(tmp_path / "p.csv", PEOPLE_CN))).exit_code == 0
    told = {
        ("outbox", "retry", "999"): "错误：没有编号为 999 的投递（见 houqin outbox）",
        ("demo",): "错误：数据库中已有人员：演示数据只能载入空数据库",
        ("export", "repairs", "--month", "2026-13", "--out", str(tmp_path / "x.xlsx")):
            "错误：--month 的值不对：请写成 YYYY-MM，例如 2026-11",
        ("menu", "publish", "2026-48"): "错误：WEEK 的值不对：请写成 YYYY-Www，例如 2026-W48",
        ("menu", "publish", "2026-W48"): "错误：2026-W48 还没有导入菜单：请先运行 houqin menu import 文件",
        ("chat",): "错误：请给出 --as 姓名 或 --openid OPENID",
    }
    for args, message in told.items():
        result = houqin(*args)
        assert result.exit_code in (1, 2) and message in result.stderr, (args, result.output)
        assert "Error" not in result.output and "Traceback" not in result.output
