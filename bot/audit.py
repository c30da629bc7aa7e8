"""操作记录: one function every change made from the console or the CLI goes through, so the office can
see who changed what, when, and from where. The row is written in the caller's transaction: a change
that rolls back leaves no record, and a recorded change cannot be lost without its record."""

from __future__ import annotations

import getpass
from datetime import datetime

from sqlalchemy.orm import Session

from models.base import utcnow
from models.console import AuditEntry

VIA_NAMES = {"console": "控制台", "cli": "命令行"}
# the actions, as the 操作记录 page shows them (a new action gets its words here)
ACTION_NAMES = {
    "console_password": "设置控制台密码",
    "password_link": "生成设置密码链接",
    "password_changed": "修改密码",
    "logout_all": "退出所有设备",
    "person_add": "添加人员",
    "person_edit": "修改人员",
    "person_deactivate": "停用人员",
    "people_import": "导入人员",
    "students_import": "导入学生",
    "code_reissue": "重发绑定码",
    "school_rename": "学校改名",
    "setting_set": "修改设置",
    "menu_publish": "发布菜单",
    "ticket_assign": "指派报修",
    "ticket_transfer": "转派报修",
    "ticket_complete": "完成报修",
    "ticket_reopen": "重新打开报修",
    "ticket_withdraw": "撤销报修",
    "ticket_merge": "合并报修",
    "alert_acknowledge": "确认无法送达",
    "bus_alarm_acknowledge": "确认校车警报",
    "outbox_retry": "重发推送",
    "menu_edit": "修改菜单",
    "canteen_reply": "回复食堂评价",
    "duty_roster": "修改值日表",
    "duty_override": "调整值日",
    "duty_override_delete": "删除值日调整",
    "calendar_mark": "标记校历",
    "drill_plan": "安排演练",
    "drill_delete": "删除演练安排",
    "safety_topic": "修改安全教育专题",
    "notice_send": "发通知",
    "bus_route_add": "添加校车线路",
    "bus_route_edit": "修改校车线路",
    "bus_route_stop": "校车线路停运",
    "bus_route_resume": "校车线路恢复运行",
    "bus_stop_add": "添加校车站点",
    "bus_stop_edit": "修改校车站点",
    "bus_stop_move": "调整校车站序",
    "bus_stop_remove": "删除校车站点",
    "bus_rider_set": "安排学生乘车",
    "bus_rider_remove": "学生不再乘车",
    "bus_leave": "校车请假",
    "bus_leave_cancel": "校车销假",
    "duty_post_add": "添加值日岗位",
    "duty_post_rename": "修改值日岗位名称",
    "duty_post_stop": "停用值日岗位",
    "duty_qr_sheet": "生成值日岗位二维码",
}


def record(db: Session, actor: str, action: str, target: str = "", detail: str = "", via: str = "console",
           at: datetime | None = None) -> AuditEntry:
    """Record one change in the caller's transaction; `at` is the caller's clock (now by default)."""
    entry = AuditEntry(at=at or utcnow(), actor=actor[:64], via=via, action=action[:40], target=target[:200],
                       detail=detail)
    db.add(entry)
    return entry


def cli_actor() -> str:
    """Who runs a CLI command, as the audit log names them: the operating-system user."""
    try:
        return f"{getpass.getuser()}（命令行）"
    except (KeyError, OSError):  # no user name in a bare container
        return "命令行"
