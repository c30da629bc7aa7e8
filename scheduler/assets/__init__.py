"""Asset jobs (issue 18), mirroring handlers/assets/: loans' due reminders and overdue escalation, the
term-end key check."""
