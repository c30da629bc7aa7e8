"""The one registry of when each job runs (cron fields in the school's timezone)."""

from __future__ import annotations

from scheduler import Job, digest, safety

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
    Job("send_daily_digest", digest.send_daily_digest, {"hour": "17", "minute": "0"},
        "17:00 后勤日报给管理员", school_days_only=True),
]
