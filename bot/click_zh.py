"""click's own messages in Chinese, like every other answer of `houqin`: "Error: Missing argument
'NAME'." reads 「错误：缺少参数 'NAME'。」. click asks `gettext` for each message (its msgid is the
English text); a translation catalog would need a compiled .mo file, so `install()` points click's
modules at `chinese()` instead, which looks the msgid up here and falls back to the English."""

from __future__ import annotations

import importlib

CATALOG = {
    "Error: {message}": "错误：{message}",
    "Try '{command} {option}' for help.": "运行 '{command} {option}' 查看用法。",
    "Usage:": "用法：",
    "Options": "选项",
    "Commands": "命令",
    "Positional arguments": "参数",
    "Show this message and exit.": "显示本帮助并退出。",
    "Show the version and exit.": "显示版本并退出。",
    "Missing argument": "缺少参数",
    "Missing option": "缺少选项",
    "Missing parameter": "缺少参数",
    "Missing {param_type}": "缺少{param_type}",
    "Missing parameter: {param_name}": "缺少参数：{param_name}",
    "Missing command.": "缺少命令。",
    "Invalid value: {message}": "值不对：{message}",
    "Invalid value for {param_hint}: {message}": "{param_hint} 的值不对：{message}",
    "No such option {name!r}.": "没有选项 {name!r}。",
    "No such option: {name}": "没有选项：{name}",
    "No such command {name!r}.": "没有命令 {name!r}。",
    "Did you mean {possibility}?": "你是想用 {possibility} 吗？",
    "(Possible options: {possibilities})": "（可能的选项：{possibilities}）",
    "Option {name!r} requires an argument.": "选项 {name!r} 需要一个值。",
    "Option {name!r} does not take a value.": "选项 {name!r} 不带值。",
    "{value!r} is not a valid {number_type}.": "{value!r} 不是有效的{number_type}。",
    "integer": "整数",
    "float": "数字",
    "{value} is not in the range {range}.": "{value} 不在范围 {range} 内。",
    "{name} {filename!r} does not exist.": "{name} {filename!r} 不存在。",
    "{name} {filename!r} is a directory.": "{name} {filename!r} 是文件夹。",
    "file": "文件",
    "directory": "文件夹",
    "path": "路径",
    "Aborted!": "已中止。",
    "default: {default}": "默认：{default}",
    "required": "必填",
}
PLURALS = {
    ("{value!r} is not {choice}.", "{value!r} is not one of {choices}."):
        "{value!r} 不是可选的值（{choices}）。",
    ("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"):
        "多出了参数（{args}）",
}
MODULES = ("click.core", "click.exceptions", "click.parser", "click.types", "click.formatting",
           "click.decorators", "click.termui", "click.utils")


def chinese(message: str) -> str:
    return CATALOG.get(message, message)


def chinese_plural(singular: str, plural: str, n: int) -> str:
    found = PLURALS.get((singular, plural))
    if found is not None:
        return found
    return singular if n == 1 else plural


def install() -> None:
    """Point click's modules at the Chinese messages (idempotent; English stays for what is not here)."""
    for name in MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "_"):
            module._ = chinese  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = chinese_plural  # type: ignore[attr-defined]
