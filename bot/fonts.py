"""The Chinese font printed PDFs embed (QR sheets, bind-code slips), so that every viewer shows the text.

reportlab's built-in CID fonts (STSong-Light) are only named in the PDF, never embedded: a viewer
without that Adobe font pack draws ☒ or nothing. A TrueType font is embedded (subset, with a ToUnicode
map, so the text can be searched and copied). reportlab embeds only TrueType outlines (`glyf`), not
CFF: Noto Sans CJK / Source Han (fonts-noto-cjk) cannot be used; WenQuanYi Micro Hei / Zen Hei
(Debian `fonts-wqy-microhei`, `fonts-wqy-zenhei`; .ci/run installs the first) can.

`HOUQIN_CJK_FONT` names another file (.ttf, or .ttc for its first face) to use instead.
"""

from __future__ import annotations

import os
from pathlib import Path

FONT_NAME = "HouqinCJK"
CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
NO_FONT = ("没有找到可嵌入 PDF 的中文 TrueType 字体：请安装 fonts-wqy-microhei（sudo apt-get install "
           "fonts-wqy-microhei），或用环境变量 HOUQIN_CJK_FONT 指定一个 .ttf/.ttc 字体文件")
BAD_FONT = "中文字体 {path} 无法嵌入 PDF（{error}）：请换一个 TrueType 字体（不能是 OpenType/CFF 字体，如 Noto Sans CJK）"


class FontMissing(RuntimeError):
    """No embeddable Chinese font: the message (Chinese) says what to install."""


def font_path() -> Path:
    chosen = os.environ.get("HOUQIN_CJK_FONT", "").strip()
    for candidate in ([chosen] if chosen else CANDIDATES):
        if Path(candidate).is_file():
            return Path(candidate)
    raise FontMissing(NO_FONT)


def cjk_font() -> str:
    """Register the embeddable Chinese font with reportlab once; returns its name for `setFont`."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
        path = font_path()
        try:
            pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
        except TTFError as exc:
            raise FontMissing(BAD_FONT.format(path=path, error=exc)) from exc
    return FONT_NAME
