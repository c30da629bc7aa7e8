"""What Houqin set up on the official account: the per-role menus and the user tags they match."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class WeChatMenu(Base):
    """One conditional menu uploaded by `houqin wechat-menu --upload`: the tag it matches (named after
    the menu's content, so one tag per distinct menu), WeChat's tag id and menu id, the buttons, and
    the role combinations that see it. Replaced as a whole at every upload."""

    __tablename__ = "wechat_menus"

    tag: Mapped[str] = mapped_column(String(30), primary_key=True)
    tag_id: Mapped[int] = mapped_column()
    menuid: Mapped[str] = mapped_column(String(32), default="")
    menu: Mapped[dict[str, Any]] = mapped_column()
    roles: Mapped[str] = mapped_column(String(500), default="")
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
