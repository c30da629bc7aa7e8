"""The 行事历 (issue 17): the office's recurring work as tasks that remind, check and land in the ledger.

rules.py     the rules in Chinese (每月15日(顺延), 每周五, 每3个月(从上次完成) …) and the calendar they count on
schedule.py  who a task's 负责 names, which occurrences T<n> are due, completing one
chat.py      任务, 完成 T<n> and the checklist walk (an 异常 files a repair ticket)
ledger.py    houqin tasks import / list / month, and the 行事历 ledger (XLSX)
The jobs (reminders, escalation, the digest's section) are in scheduler/tasks.py.
"""
