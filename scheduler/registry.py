"""The one registry of when each job runs (cron fields in the school's timezone)."""

from __future__ import annotations

from scheduler import Job, bus, canteen, digest, duty, repair, safety
from scheduler.assets import keys as asset_keys
from scheduler.assets import loans as asset_loans

JOBS: list[Job] = [
    Job("remind_drill_eve", safety.remind_drill_eve, {"hour": "16", "minute": "0"},
        "演练前一天提醒教师、通知家长"),
    Job("remind_drill_morning", safety.remind_drill_morning, {"hour": "7", "minute": "30"},
        "演练当天早上提醒教师"),
    Job("escalate_unlogged_drill", safety.escalate_unlogged_drill, {"hour": "17", "minute": "30"},
        "月末最后一个上课日演练未记录则报管理员", school_days_only=True),
    Job("push_safety_topic", safety.push_safety_topic, {"hour": "7", "minute": "40"},
        "每月第一个上课日推送安全教育专题给家长", school_days_only=True),
    Job("remind_friday_talk", safety.remind_friday_talk, {"day_of_week": "fri", "hour": "14", "minute": "0"},
        "周五夕会安全教育提醒班主任", school_days_only=True),
    Job("remind_fire_check", safety.remind_fire_check, {"hour": "8", "minute": "0"},
        "每月消防设备自检提醒", school_days_only=True),
    Job("escalate_fire_check", safety.escalate_fire_check, {"hour": "8", "minute": "30"},
        "消防自检3天未完成报管理员", school_days_only=True),
    Job("escalate_unaccepted_repairs", repair.escalate_unaccepted_repairs, {"hour": "7-17", "minute": "*/10"},
        "报修超过2个工作小时未接单报管理员", school_days_only=True, grace_seconds=600),
    Job("escalate_overdue_repairs", repair.escalate_overdue_repairs, {"minute": "*/10"},
        "报修3天未完成（紧急4小时）报管理员", grace_seconds=600),
    Job("watch_bus_reports", bus.watch_bus_reports, {"hour": "7-19", "minute": "*"},
        "校车截止后15分钟未报人数提醒跟车老师，30分钟报管理员", school_days_only=True, grace_seconds=300),
    Job("repeat_bus_alarms", bus.repeat_bus_alarms, {"minute": "*"},
        "校车下车少人警报每5分钟重复直到确认", grace_seconds=300),
    Job("remind_duty", duty.remind_duty, {"hour": "6-18", "minute": "*"},
        "值日开始前10分钟提醒值日教师", school_days_only=True, grace_seconds=300),
    Job("record_missed_duty", duty.record_missed_duty, {"hour": "6-20", "minute": "*"},
        "值日开始10分钟后未签到记缺岗并告知教师", school_days_only=True, grace_seconds=300),
    Job("remind_menu_publish", canteen.remind_menu_publish, {"day_of_week": "thu", "hour": "12", "minute": "0"},
        "周四12:00下周菜单未发布则提醒食堂"),
    Job("push_weekly_menu", canteen.push_weekly_menu, {"day_of_week": "thu", "hour": "16", "minute": "0"},
        "周四16:00推送下周菜单给家长和教师；未发布则告知管理员、不推送"),
    Job("push_canteen_survey", canteen.push_canteen_survey, {"hour": "16", "minute": "30"},
        "每月调查日（canteen_survey_day）推送食堂满意度调查给家长和教师", school_days_only=True),
    Job("remind_loans_due", asset_loans.remind_loans_due, {"hour": "8", "minute": "0"},
        "每天8:00 给借用到期或逾期的人发一条汇总提醒（含钥匙）"),
    Job("escalate_overdue_loans", asset_loans.escalate_overdue_loans, {"hour": "8", "minute": "30"},
        "借用逾期 loan_overdue_days 天报保管人和管理员（每项一次，按人汇总）"),
    Job("check_keys_at_term_end", asset_keys.check_keys_at_term_end, {"hour": "15", "minute": "0"},
        "学期结束日15:00 列出未归还的钥匙报管理员并提醒领取人"),
    Job("send_daily_digest", digest.send_daily_digest, {"hour": "17", "minute": "0"},
        "17:00 后勤日报给管理员", school_days_only=True),
]
