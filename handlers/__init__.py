"""The capabilities, in priority order: the first whose keyword, menu key, scene or event matches
a message gets it. Add a capability by importing its Conversation(s) here."""

from __future__ import annotations

from bot.engine import Conversation
from handlers import identity, safety

CAPABILITIES: list[Conversation] = [
    identity.follow,
    identity.binding,
    identity.unbind,
    identity.whoami,
    safety.drill,
    safety.fire_check,
]
