"""Assets, keys and supplies (issue 18): the register (一物一档), loans, keys, stocktakes, consumables,
disposal and their ledgers, one module each. models/assets/ and scheduler/assets/ mirror it."""

from handlers.assets import approvals, disposal, keys, loans, register, stocktake, supplies

__all__ = ["approvals", "disposal", "keys", "loans", "register", "stocktake", "supplies"]
