"""Printable sheets of permanent parametric QR codes: rooms and assets (repairs), duty posts (check-in).

Codes are created once through the WeChat API (`QR_LIMIT_STR_SCENE`, scene "<kind>:<id>") and kept on
their row, so printing again reuses them. The sheet is an A4 PDF drawn with reportlab; Chinese labels
are set in an embedded TrueType font (bot/fonts.py), so every viewer shows them. `draw_qr` draws one
code and `cut_sheet` lays out the pages; the bind-code slips (bot/slips.py) use both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.fonts import cjk_font
from bot.wechat.gateway import WeChatApi
from models import Asset, DutyPost, Room

COLUMNS, ROWS = 3, 4
HINT = "微信扫一扫 · 报修"
Coded = TypeVar("Coded", Room, Asset, DutyPost)  # a row with a QR code: id, qr_url, qr_ticket


@dataclass
class QrCard:
    title: str  # the room's name, large
    subtitle: str  # building and floor, or the asset's code
    url: str  # what the code encodes: the URL the WeChat API returned


def ensure_codes(factory: sessionmaker[Session], api: WeChatApi, model: type[Coded], kind: str,
                 card: Callable[[Coded], QrCard], prefix: str = "") -> tuple[list[QrCard], int]:
    """Every row's card, creating the codes still missing (each saved at once, so a failure part-way
    keeps what was made). Returns the cards and how many codes were created. `prefix` names the school
    on a shared account (bot.county.scene_for): "north/room:12"."""
    created = 0
    stopped = getattr(model, "stopped_at", None)  # a 停用 duty post is printed no more
    in_use = [stopped.is_(None)] if stopped is not None else []
    with factory() as db:
        missing = list(db.scalars(select(model.id).where(model.qr_url == "", *in_use).order_by(model.id)))
    for row_id in missing:
        result = api.create_qrcode(f"{prefix}{kind}:{row_id}")
        with factory() as db, db.begin():
            row = db.get(model, row_id)
            if row is not None and not row.qr_url:
                row.qr_url, row.qr_ticket = str(result["url"]), str(result.get("ticket", ""))
                created += 1
    with factory() as db:
        cards = [card(row) for row in db.scalars(select(model).where(*in_use).order_by(model.id))]
    return cards, created


def room_card(room: Room) -> QrCard:
    return QrCard(room.name, room.where, room.qr_url)


def asset_card(asset: Asset) -> QrCard:
    where = f"{asset.room.name} · " if asset.room else ""
    return QrCard(asset.name, f"{where}{asset.code}", asset.qr_url)


def post_card(post: DutyPost) -> QrCard:
    return QrCard(post.name, "值日岗位", post.qr_url)


def draw_qr(canvas: Any, url: str, x: float, y: float, size: float) -> None:
    """A QR code of `url`, `size` points square, its lower-left corner at (x, y)."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing

    widget = QrCodeWidget(url, barLevel="M")
    x1, y1, x2, y2 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x2 - x1), 0, 0, size / (y2 - y1), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, x, y)


@dataclass(frozen=True)
class Layout:
    """A cut sheet's grid on A4, in millimetres: its columns and rows, the page margin, the band at the
    top for the heading (its size in points, its baseline's drop from the page's top), and how far
    inside each cell its dashed cut line runs."""
    columns: int
    rows: int
    margin: float
    top: float
    heading_size: float
    heading_drop: float
    inset: float


Item = TypeVar("Item")
# draws one item in its cell: (canvas, font, item, x0, y0, cell_w, cell_h), the cell's lower-left at (x0, y0)
DrawCell = Callable[[Any, str, Item, float, float, float, float], None]

SHEET = Layout(COLUMNS, ROWS, margin=12, top=22, heading_size=16, heading_drop=14, inset=2)


def cut_sheet(items: Sequence[Item], out: str | Path | IO[bytes], title: str, layout: Layout,
              draw_cell: DrawCell[Item]) -> int:
    """The one page loop of every printed sheet (QR codes, bind-code slips): A4 pages of `layout`'s grid,
    each headed `title（第n/m页）`, each item in its cell inside dashed cut lines, drawn by `draw_cell`,
    in the embedded CJK font (bot/fonts.py). Returns the number of pages (at least one)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    font = cjk_font()
    width, height = A4
    margin, top, inset = layout.margin * mm, layout.top * mm, layout.inset * mm
    cell_w, cell_h = (width - 2 * margin) / layout.columns, (height - margin - top) / layout.rows
    if isinstance(out, str | Path):
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
    canvas = Canvas(str(out) if isinstance(out, Path) else out, pagesize=A4)
    canvas.setTitle(title)
    per_page = layout.columns * layout.rows
    pages = max(1, -(-len(items) // per_page))
    for page in range(pages):
        canvas.setFont(font, layout.heading_size)
        canvas.drawCentredString(width / 2, height - layout.heading_drop * mm, f"{title}（第{page + 1}/{pages}页）")
        for i, item in enumerate(items[page * per_page:(page + 1) * per_page]):
            col, row = i % layout.columns, i // layout.columns
            x0, y0 = margin + col * cell_w, height - top - (row + 1) * cell_h
            canvas.setDash(2, 3)
            canvas.rect(x0 + inset, y0 + inset, cell_w - 2 * inset, cell_h - 2 * inset)  # cut lines
            canvas.setDash()
            draw_cell(canvas, font, item, x0, y0, cell_w, cell_h)
        canvas.showPage()
    canvas.save()
    return pages


def render_sheet(cards: Sequence[QrCard], out: str | Path | IO[bytes], heading: str, hint: str = HINT) -> int:
    """Draw the cards on A4 pages, 3 by 4; returns the number of pages."""
    from reportlab.lib.units import mm

    def card_cell(canvas: Any, font: str, card: QrCard, x0: float, y0: float, cell_w: float, cell_h: float) -> None:
        size = min(cell_w, cell_h) - 22 * mm
        draw_qr(canvas, card.url, x0 + (cell_w - size) / 2, y0 + 17 * mm, size)
        canvas.setFont(font, 13)
        canvas.drawCentredString(x0 + cell_w / 2, y0 + 11 * mm, card.title[:16])
        canvas.setFont(font, 8)
        canvas.drawCentredString(x0 + cell_w / 2, y0 + 6 * mm, f"{card.subtitle}  {hint}".strip()[:40])

    return cut_sheet(cards, out, heading, SHEET, card_cell)
