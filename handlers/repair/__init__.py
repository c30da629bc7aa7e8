"""Repairs and hazards, a package since it passed ~600 lines (STYLE.md, "as the house grows"):

    rules.py   categories, urgency, routing, places, same fault, numbers, deadlines — shared by all below
    chat.py    the conversations: 报修, photos, 接单 / 完成 / 转派, 未修好, 撤销, R<n>, 我的报修, 巡查
    ledger.py  the rooms and category imports and the monthly 报修台账 (assets: handlers/assets/register.py)

The escalation jobs and the digest section are in scheduler/repair.py, the office's pages in
bot/console/repair.py. This module re-exports the conversations (handlers/__init__.py lists them) and the
names other modules imported from handlers.repair before the split.
"""

from __future__ import annotations

from handlers.repair.chat import (
    HELP_REPAIR,
    NO_OPEN,
    PHOTO_FIRST,
    UNKNOWN_TICKET,
    accept,
    attach_photo,
    describe,
    file_ticket,
    finish,
    finish_ticket,
    my_repairs,
    patrol,
    reopen,
    reopen_ticket,
    repair,
    ticket_view,
    transfer,
    transfer_ticket,
    withdraw,
    withdraw_ticket,
)
from handlers.repair.ledger import (
    HAZARD_HEADER,
    HAZARD_WIDE,
    LEDGER_HEADER,
    LEDGER_WIDE,
    STAFF_HEADER,
    import_categories,
    import_rooms,
    repair_ledger,
)
from handlers.repair.rules import (
    OTHER_CATEGORY,
    WORK_ROLES,
    Place,
    categorize,
    category_map,
    done_limit,
    follow,
    is_overdue,
    local_label,
    names_of,
    overdue_among,
    resolve_place,
    responsible,
    ticket_by_code,
    ticket_push,
    workers_of,
)

__all__ = ["HAZARD_HEADER", "HAZARD_WIDE", "HELP_REPAIR", "LEDGER_HEADER", "LEDGER_WIDE", "NO_OPEN", "OTHER_CATEGORY",
           "PHOTO_FIRST", "STAFF_HEADER", "UNKNOWN_TICKET", "WORK_ROLES", "Place", "accept", "attach_photo",
           "categorize", "category_map", "describe", "done_limit", "file_ticket", "finish", "finish_ticket", "follow",
           "import_categories", "import_rooms", "is_overdue", "local_label", "my_repairs",
           "names_of", "overdue_among", "patrol", "reopen", "reopen_ticket", "repair", "repair_ledger",
           "resolve_place", "responsible", "ticket_by_code", "ticket_push", "ticket_view", "transfer",
           "transfer_ticket", "withdraw", "withdraw_ticket", "workers_of"]
