"""`houqin jobs run`, as an operator runs it: `--dry-run` shows what would go to whom and changes
nothing; a real run claims the occurrence, so neither the scheduler nor a second run repeats it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.services import Services
from models import Drill, JobRun, Push

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(local: str) -> datetime:
    return datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


def count(services: Services, model: type) -> int:
    with services.factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def digest_runs(services: Services) -> list[tuple[int, str, bool]]:
    with services.factory() as s:
        rows = s.scalars(select(JobRun).where(JobRun.job_id == "send_daily_digest").order_by(JobRun.id))
        return [(r.attempt, r.status, r.manual) for r in rows]


def test_dry_run_prints_each_push_kind_recipient_and_text_and_changes_nothing(services, people, wechat_user,
                                                                              houqin, queued, clock) -> None:
    clock.set("2026-11-23 15:00")
    people.add("张丽", "teacher")
    people.add("王强", "teacher")  # never bound: the notice could not reach him
    people.add("陈建国", "parent")
    wechat_user("张丽")
    wechat_user("陈建国")
    with services.factory() as s, s.begin():
        s.add(Drill(day=date(2026, 11, 24), at=time(10, 0), kind="消防疏散", scope="全校"))
    pushes_before = count(services, Push)

    out = houqin("jobs", "run", "remind_drill_eve", "--at", "2026-11-23 16:00", "--dry-run")

    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "remind_drill_eve 试运行（--dry-run）：按 2026-11-23 16:00 运行，未推送、未记录任何内容。"
    assert "这一次尚未运行；真实运行会占用这一次，定时任务不再重复。" in lines
    assert "将推送 2 条：" in lines
    assert "[drill_reminder] → 张丽、王强（无法送达：未绑定微信）" in lines
    assert "[drill_notice] → 陈建国" in lines
    assert any("消防疏散" in line and "11月24日" in line for line in lines[lines.index("[drill_notice] → 陈建国") + 1:])
    assert lines[-1] == "结果：1 场演练的前一天提醒"
    assert queued() == [] and count(services, Push) == pushes_before and count(services, JobRun) == 0

    # the checked occurrence is still the scheduler's to run, and it sends exactly what was shown
    out = houqin("jobs", "run", "remind_drill_eve", "--at", "2026-11-23 16:00")
    assert out.exit_code == 0, out.output
    assert sorted((q.kind, q.name) for q in queued()) == [
        ("drill_notice", "陈建国"), ("drill_reminder", "张丽"), ("drill_reminder", "王强")]


def test_dry_run_says_so_when_nothing_would_be_sent_and_when_the_occurrence_already_ran(people, wechat_user,
                                                                                       houqin, queued, clock) -> None:
    clock.set("2026-11-24 18:00")
    people.add("周春明", "admin")
    wechat_user("周春明")
    saturday = houqin("jobs", "run", "send_daily_digest", "--at", "2026-11-28 17:30", "--dry-run")
    assert saturday.exit_code == 0, saturday.output
    assert "按 2026-11-28 17:00 运行" in saturday.output  # the occurrence a scheduler would run at 17:30
    assert "不会推送任何消息。" in saturday.output and "结果：非上课日，未执行" in saturday.output

    assert houqin("jobs", "run", "send_daily_digest", "--at", "2026-11-24 17:00").exit_code == 0
    again = houqin("jobs", "run", "send_daily_digest", "--at", "2026-11-24 17:00", "--dry-run")
    assert "这一次已经运行过（done）；真实运行需加 --force 才会再发。" in again.output
    assert "[daily_digest] → 周春明" in again.output and "    【后勤日报】11月24日（周二）" in again.output
    assert len(queued("daily_digest")) == 1


def test_a_manual_run_claims_the_occurrence_once_and_force_sends_again(services, people, wechat_user, houqin,
                                                                       runner, queued, clock) -> None:
    clock.set("2026-11-24 16:50")
    people.add("周春明", "admin")
    wechat_user("周春明")

    first = houqin("jobs", "run", "send_daily_digest", "--at", "2026-11-24 17:00")
    assert first.exit_code == 0, first.output
    assert "send_daily_digest: done — 【后勤日报】11月24日（周二）" in first.output
    assert "已运行 2026-11-24 17:00 这一次（第 1 次），定时任务不会再运行它。" in first.output
    assert len(queued("daily_digest")) == 1

    # 17:00: the scheduler finds the occurrence claimed and does not send the digest again
    clock.set("2026-11-24 17:00")
    assert "send_daily_digest" not in [r.job_id for r in runner.tick()]
    assert len(queued("daily_digest")) == 1

    # a second run by hand of the same occurrence (here: "now" at 17:20) says it already ran
    clock.set("2026-11-24 17:20")
    second = houqin("jobs", "run", "send_daily_digest")
    assert second.exit_code == 1
    assert ("send_daily_digest 在 2026-11-24 17:00 的这一次已经运行过（2026-11-24 16:50，done：【后勤日报】11月24日（周二））"
            "，未重复运行。确要重新发送，请加 --force。") in second.output
    assert len(queued("daily_digest")) == 1

    forced = houqin("jobs", "run", "send_daily_digest", "--force")
    assert forced.exit_code == 0, forced.output
    assert "已运行 2026-11-24 17:00 这一次（第 2 次）" in forced.output
    assert len(queued("daily_digest")) == 2
    assert digest_runs(services) == [(1, "done", True), (2, "done", True)]


def test_a_manual_run_reruns_an_occurrence_that_was_skipped_or_failed(services, people, wechat_user, houqin,
                                                                      runner, queued, clock) -> None:
    """The scheduler was down past the grace: the digest was recorded as skipped, nothing went; the
    operator runs it by hand without --force."""
    clock.set("2026-11-23 16:00")
    people.add("周春明", "admin")
    wechat_user("周春明")
    clock.set("2026-11-23 17:00")
    runner.tick()  # Monday's digest goes
    clock.set("2026-11-24 19:00")
    runner.tick()  # back two hours after Tuesday's: past its grace
    assert digest_runs(services) == [(1, "done", False), (1, "skipped", False)]
    assert len(queued("daily_digest")) == 1
    out = houqin("jobs", "run", "send_daily_digest", "--at", "2026-11-24 17:00")
    assert out.exit_code == 0, out.output
    assert "已运行 2026-11-24 17:00 这一次（第 2 次）" in out.output
    assert queued("daily_digest")[-1].text.startswith("【后勤日报】11月24日（周二）")
    assert len(queued("daily_digest")) == 2
    assert digest_runs(services) == [(1, "done", False), (1, "skipped", False), (2, "done", True)]


def test_jobs_run_rejects_a_bad_time_and_changes_nothing(services, houqin, clock) -> None:
    clock.set("2026-11-24 10:00")
    out = houqin("jobs", "run", "send_daily_digest", "--at", "明天下午", "--dry-run")
    assert out.exit_code == 2 and '时间请写成 "YYYY-MM-DD HH:MM"（学校时间）' in out.output
    assert count(services, JobRun) == 0


def test_a_manual_run_leaves_a_running_claim_alone_until_its_lease_expires(services, people, wechat_user, houqin,
                                                                           queued, clock) -> None:
    """A scheduler is running the digest (its claim's lease is live): a run by hand is refused, even
    forced; once the lease has expired (the scheduler was killed) the run by hand takes it over."""
    clock.set("2026-11-24 16:50")
    people.add("周春明", "admin")
    wechat_user("周春明")
    with services.factory() as s, s.begin():
        s.add(JobRun(job_id="send_daily_digest", occurrence=at("2026-11-24 17:00"), as_of=at("2026-11-24 17:00"),
                     status="running", owner="scheduler-1a2b3c4d", started_at=at("2026-11-24 17:00"),
                     lease_until=at("2026-11-24 17:02")))
    clock.set("2026-11-24 17:01")
    for flags in ([], ["--force"]):
        out = houqin("jobs", "run", "send_daily_digest", *flags)
        assert out.exit_code == 1
        assert ("send_daily_digest 在 2026-11-24 17:00 的这一次正在运行（scheduler-1a2b3c4d，租约到 2026-11-24 17:02），"
                "未重复运行。") in out.output
    assert "这一次正在由 scheduler-1a2b3c4d 运行。" in houqin("jobs", "run", "send_daily_digest", "--dry-run").output
    assert queued() == [] and digest_runs(services) == [(1, "running", False)]

    clock.set("2026-11-24 17:05")
    out = houqin("jobs", "run", "send_daily_digest")
    assert out.exit_code == 0, out.output
    assert "已运行 2026-11-24 17:00 这一次（第 2 次）" in out.output
    assert len(queued("daily_digest")) == 1
    assert digest_runs(services) == [(1, "failed", False), (2, "done", True)]
