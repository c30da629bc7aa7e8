"""The console's tests share tests/test_console.py's `office`: an admin with a console password, staff
of 电教, a teacher, and a repair ticket R1 with a photo."""

from tests.test_console import office

__all__ = ["office"]
