"""The media worker: photos sent with reports and with canteen feedback are downloaded from (fake)
WeChat into the storage folder at once; transient failures are retried with backoff, refused media
ids are given up, and a worker that dies mid-download leaves its lease to another."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.services import Services
from bot.wechat.fake import fake_jpeg
from bot.wechat.media import MediaWorker, media_worker
from models import FeedbackPhoto, TicketPhoto


@pytest.fixture
def photographed(people, wechat_user, clock):
    """张丽 files R1 and sends one photo; returns a function that sends another."""
    clock.set("2026-11-23 08:00")
    people.add("程财宝", "staff", categories="安全")
    people.add("张丽", "teacher")
    teacher = wechat_user("张丽")
    assert "R1" in teacher.say("报修 操场 地砖松动").text

    def send(media_id: str) -> str:
        return teacher.image(media_id=media_id).text

    return send


def photo_rows(services: Services) -> list[TicketPhoto]:
    with services.factory() as s:
        return list(s.scalars(select(TicketPhoto).order_by(TicketPhoto.id)))


def test_a_photo_is_saved_under_the_storage_folder(photographed, services: Services, settings, fetch_media) -> None:
    assert "R1" in photographed("media_ground")
    assert fetch_media() == 1
    (row,) = photo_rows(services)
    assert row.status == "saved" and row.content_type.startswith("image/jpeg") and row.size == len(fake_jpeg("media_ground"))
    assert (settings.storage_dir / row.path).read_bytes() == fake_jpeg("media_ground")
    assert fetch_media() == 0  # nothing is downloaded twice


def test_transient_errors_are_retried_after_a_backoff(photographed, services: Services, fake_wechat, clock,
                                                      settings) -> None:
    photographed("media_retry")
    worker = media_worker(services)
    fake_wechat.script("media/get", -1, 500)  # WeChat busy, then an HTTP error
    assert worker.run_once() == 1
    (row,) = photo_rows(services)
    assert (row.status, row.attempts) == ("pending", 1) and "-1" in (row.last_error or "")
    assert worker.run_once() == 0  # not due yet
    clock.advance(seconds=11)
    worker.run_once()
    (row,) = photo_rows(services)
    assert (row.status, row.attempts) == ("pending", 2) and "http" in (row.last_error or "")
    clock.advance(seconds=21)
    worker.run_once()
    (row,) = photo_rows(services)
    assert row.status == "saved" and (settings.storage_dir / row.path).is_file()
    assert len([c for c in fake_wechat.calls if c.endpoint == "media/get"]) == 3


def test_a_refused_media_id_is_given_up_at_once(photographed, services: Services, fetch_media) -> None:
    photographed("expired-long-ago")  # the fake answers 40007 invalid media_id
    fetch_media()
    (row,) = photo_rows(services)
    assert (row.status, row.attempts, row.path) == ("failed", 1, "") and "40007" in (row.last_error or "")


def test_persistent_failures_stop_after_the_last_attempt(photographed, services: Services, fake_wechat,
                                                        clock) -> None:
    photographed("media_flaky")
    worker = MediaWorker(services.factory, services.settings, services.api, clock=services.now, max_attempts=2,
                         backoff_seconds=0)
    fake_wechat.script("media/get", -1, -1, -1)
    worker.drain()
    (row,) = photo_rows(services)
    assert (row.status, row.attempts) == ("failed", 2) and "gave up" in (row.last_error or "")


def test_a_dead_workers_lease_is_taken_over(photographed, services: Services, clock, settings) -> None:
    photographed("media_lease")
    dead = media_worker(services)
    assert len(dead.claim()) == 1  # claimed, then the process died
    other = media_worker(services)
    assert other.run_once() == 0  # still leased
    clock.advance(minutes=3)
    assert other.run_once() == 1
    (row,) = photo_rows(services)
    assert row.status == "saved" and (settings.storage_dir / row.path).is_file()


def feedback_photos(services: Services) -> list[FeedbackPhoto]:
    with services.factory() as s:
        return list(s.scalars(select(FeedbackPhoto).order_by(FeedbackPhoto.id)))


def test_one_worker_downloads_repair_and_canteen_photos_each_into_its_folder(
        photographed, wechat_user, people, clock, services: Services, settings, fetch_media) -> None:
    photographed("media_ground")
    people.add("王强", "teacher")
    clock.set("2026-11-23 12:10")  # a Monday, a school day
    teacher = wechat_user("王强")
    assert "F1" in teacher.say("食堂 4 米饭有点硬").text
    assert teacher.image(media_id="media_rice").text == "照片已附在食堂评价 F1 上。"
    assert fetch_media() == 2
    (repair,) = photo_rows(services)
    (canteen,) = feedback_photos(services)
    assert repair.path.startswith("repairs/R1/") and canteen.path.startswith("canteen/F1/")
    assert (settings.storage_dir / canteen.path).read_bytes() == fake_jpeg("media_rice")
    assert (settings.storage_dir / repair.path).read_bytes() == fake_jpeg("media_ground")


def test_a_replaced_feedback_photo_does_not_wait_for_the_old_lease(people, wechat_user, clock, services: Services,
                                                                   settings) -> None:
    clock.set("2026-11-23 12:10")
    people.add("王强", "teacher")
    teacher = wechat_user("王强")
    teacher.say("食堂 2 菜是凉的")
    teacher.image(media_id="media_cold")
    dead = media_worker(services)
    assert len(dead.claim()) == 1  # claimed the first photo, then the process died
    assert teacher.image(media_id="media_colder").text == "照片已更换（食堂评价 F1）。"
    other = media_worker(services)
    assert other.run_once() == 1  # the replacement is due at once, not after the old lease
    (photo,) = feedback_photos(services)
    assert (photo.media_id, photo.status, photo.attempts) == ("media_colder", "saved", 1)
    assert (settings.storage_dir / photo.path).read_bytes() == fake_jpeg("media_colder")


# -- what is kept: images only, capped, within a deadline ------------------------------------------
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 64
WEBP = b"RIFF\x40\x00\x00\x00WEBPVP8 " + b"\x00" * 64
HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


def capped_worker(services: Services, **settings: Any) -> MediaWorker:
    services.settings = services.settings.with_overrides(**settings)
    return media_worker(services)


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "chunked"])
def test_a_photo_over_the_cap_is_refused_and_not_stored(photographed, services: Services, fake_wechat, settings,
                                                        sized: bool) -> None:
    fake_wechat.add_media("media_huge", fake_jpeg("huge") + b"\x00" * (1024 * 1024), sized=sized)
    photographed("media_huge")
    capped_worker(services, photo_max_bytes=64 * 1024).drain()
    (row,) = photo_rows(services)
    assert (row.status, row.attempts, row.path, row.size) == ("failed", 1, "", 0)
    assert row.last_error == "照片超过 64 KB 上限，未保存"
    assert not (settings.storage_dir / "repairs").exists() or not any((settings.storage_dir / "repairs").rglob("*"))


@pytest.mark.parametrize("mimetype", ["image/jpeg", "text/html"])
def test_a_photo_that_is_no_image_is_refused_whatever_its_type_says(photographed, services: Services, fake_wechat,
                                                                    fetch_media, mimetype: str) -> None:
    fake_wechat.add_media("media_page", HTML, mimetype=mimetype)
    photographed("media_page")
    fetch_media()
    (row,) = photo_rows(services)
    assert (row.status, row.attempts, row.path) == ("failed", 1, "")
    assert row.last_error == f"收到的不是图片（JPEG/PNG/GIF/WebP），而是 {mimetype}，未保存"


@pytest.mark.parametrize(("content", "kind", "suffix"), [
    (PNG, "image/png", ".png"), (GIF, "image/gif", ".gif"), (WEBP, "image/webp", ".webp")])
def test_an_image_is_typed_by_its_content_not_its_header(photographed, services: Services, fake_wechat, settings,
                                                        fetch_media, content: bytes, kind: str, suffix: str) -> None:
    fake_wechat.add_media("media_typed", content, mimetype="application/octet-stream")
    photographed("media_typed")
    fetch_media()
    (row,) = photo_rows(services)
    assert (row.status, row.content_type) == ("saved", kind) and row.path.endswith(suffix)
    assert (settings.storage_dir / row.path).read_bytes() == content


def test_a_slow_download_is_given_up_at_the_deadline_and_retried(photographed, services: Services, fake_wechat,
                                                                 settings) -> None:
    # 64 pieces of 4 KB, 0.05 s apart: about 3 s in all, against a deadline of 0.3 s
    fake_wechat.add_media("media_slow", fake_jpeg("slow") + b"\x00" * (256 * 1024), delay=0.05, sized=False)
    photographed("media_slow")
    capped_worker(services, photo_deadline_seconds=0.3).run_once()
    (row,) = photo_rows(services)
    assert (row.status, row.attempts, row.path) == ("pending", 1, "")
    assert row.last_error == "http: 照片下载超过 0.3 秒未完成"


@pytest.fixture
def admin_client(people, houqin, client):
    from tests.test_console import PASSWORD, sign_in

    people.add("周春明", "admin")
    assert houqin("console-password", "周春明", "--password", PASSWORD).exit_code == 0
    sign_in(client)
    return client


def test_the_console_serves_a_photo_as_the_image_it_is_and_never_an_html_one(
        photographed, services: Services, fake_wechat, fetch_media, settings, admin_client) -> None:
    fake_wechat.add_media("media_png", PNG, mimetype="text/html")
    photographed("media_png")
    photographed("media_jpeg")
    fetch_media()
    png, jpeg = photo_rows(services)
    res = admin_client.get(f"/admin/photos/{png.id}")
    assert res.status_code == 200 and res.mimetype == "image/png" and res.data == PNG
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    # a page kept as a "photo" before photos were checked is not served at all
    (settings.storage_dir / jpeg.path).write_bytes(HTML)
    with services.factory() as s, s.begin():
        s.get(TicketPhoto, jpeg.id).content_type = "text/html"  # type: ignore[union-attr]
    assert admin_client.get(f"/admin/photos/{jpeg.id}").status_code == 404
