"""The capabilities, in priority order: the first whose keyword, menu key, scene or event matches
a message gets it. Add a capability by importing its Conversation(s) here."""

from __future__ import annotations

from bot.engine import Conversation
from handlers import bus, canteen, courtesy, duty, identity, notices, repair, safety, suggestions, survey
from handlers.assets import approvals, disposal, keys, loans, register, stocktake, supplies
from handlers.tasks import chat as tasks

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
    tasks.task_finish,  # 完成 T<n>; 完成 R<n> goes on to repair.finish
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
    tasks.task_list,
    keys.take_key,  # 领钥匙 / 还钥匙 before 还 and 钥匙
    keys.return_key,
    keys.who_holds,
    loans.borrow,
    loans.give_back,
    loans.mine,
    register.room_assets,
    register.asset_file,
    register.move,
    stocktake.stocktake,
    supplies.stock_in,
    supplies.issue,
    supplies.stock,
    disposal.dispose,
    approvals.approve,
    survey.survey,
    suggestions.anonymous,
    suggestions.signed,
    suggestions.mine,
    suggestions.reply,  # 回复 Y<n>; 回复 F<n> is passed to canteen.reply
    courtesy.courtesy,  # last: only what no capability took
]
