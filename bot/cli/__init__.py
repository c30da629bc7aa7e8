"""The `houqin` command, one module per area beside this one (as bot/console/ is): base (the group
`main`, `_services()`, errors and shared helpers), processes (serve, worker, scheduler, spool, db, demo),
people (people, students, codes, console-password), outbox, wechat (fake-wechat, chat, templates,
wechat-menu), jobs, school_data (calendar, drills, safety, setting), repair (rooms, assets,
repair-categories, qr rooms|assets, export repairs), bus (routes, posts, qr posts, export bus), duty,
canteen (menu, export canteen), assets (stocktake, supplies, keys, export assets…), tasks (the 行事历),
voice (notices, survey), schools (school, templates set) and county.

Importing an area's module declares its commands on `main` (or on `export`, `qr`); the modules whose
groups stand alone are added below, once, explicitly."""

from __future__ import annotations

from bot.cli import (
    assets,
    bus,
    canteen,
    county,
    duty,
    jobs,
    outbox,
    people,
    processes,
    repair,
    school_data,
    schools,
    tasks,
    voice,
    wechat,
)
from bot.cli.base import START_SERVE_FIRST, CliError, export, main

for _command in assets.COMMANDS:  # stocktake, supplies, keys
    main.add_command(_command)
for _command in assets.EXPORTS:  # export assets|loans|keys|stocktake|supplies
    export.add_command(_command)
export.add_command(tasks.export_tasks)  # export tasks: the 行事历台账 (also `houqin tasks ledger`)
main.add_command(schools.school)
main.add_command(county.county)
wechat.templates.add_command(schools.templates_set)
voice.register(main, export)  # houqin notices | survey, export notices | suggestions (issue 19)
main.add_command(tasks.tasks)  # the 行事历

__all__ = ["START_SERVE_FIRST", "CliError", "assets", "bus", "canteen", "county", "duty", "jobs", "main", "outbox",
           "people", "processes", "repair", "school_data", "schools", "tasks", "voice", "wechat"]
