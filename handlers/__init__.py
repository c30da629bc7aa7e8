"""The capabilities, in priority order: the first whose keyword, menu key, scene or event matches
a message gets it. Add a capability by importing its Conversation(s) here."""

from __future__ import annotations

from bot.engine import Conversation
from handlers import bus, canteen, courtesy, duty, identity, notices, repair, safety, suggestions, survey

CAPABILITIES: list[Conversation] = [
    identity.follow,
    identity.binding,
    identity.unbind,
    identity.whoami,
    identity.reissue,
    notices.confirm,  # 收到 with a notice open; otherwise courtesy has it
    notices.status,
    safety.drill,
    safety.fire_check,
    canteen.menu,
    canteen.publish,
    canteen.view,
    canteen.rating,
    canteen.survey,
    canteen.reply,
    canteen.accompany,
    repair.repair,
    repair.my_repairs,
    repair.accept,
    repair.finish,
    repair.transfer,
    repair.reopen,
    repair.withdraw,
    repair.patrol,
    repair.ticket_view,
    bus.bus,
    bus.ack,
    bus.leave,
    bus.subscription,
    duty.checkin,
    duty.swap,
    duty.agree,
    survey.survey,
    suggestions.anonymous,
    suggestions.signed,
    suggestions.mine,
    suggestions.reply,  # 回复 Y<n>; 回复 F<n> is passed to canteen.reply
    courtesy.courtesy,  # last: only what no capability took
]
