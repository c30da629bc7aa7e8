"""Courtesy: 谢谢, 好的, 收到, 你好 — a short, polite answer instead of "没有听懂".

Only a message that is nothing but courtesy words (and punctuation or emoji) is answered here, and
only when no capability took it first (a 是 or 好的 answering a question goes to that question).
"""

from __future__ import annotations

from bot.engine import Context, Conversation, Incoming, Reply
from bot.text import without_emoji

GREETINGS = ("你好", "您好", "早上好", "中午好", "下午好", "晚上好", "老师好", "hello", "hi", "在吗", "在不在")
# WeChat's own stickers arrive as their names in brackets ([抱拳], [强]); a thumbs-up emoji is a nod
THANKS = ("谢谢", "感谢", "多谢", "谢啦", "辛苦了", "辛苦", "麻烦了", "thanks", "thank you", "[抱拳]", "[玫瑰]", "🙏")
NODS = ("好的", "好", "收到", "知道了", "明白", "明白了", "嗯", "嗯嗯", "ok", "okay", "好滴", "行", "可以", "没问题",
        "了解", "[强]", "[ok]", "[握手]", "👍", "👌")
FILLERS = "您你老师师傅啊呀哈哦的了呢吧 ,.!?~、，。！？～:："

HELLO = "你好，{name}！有什么可以帮你？发送「帮助」查看你可以使用的命令。"
HELLO_STRANGER = "你好！发送「帮助」查看可以使用的命令；绑定身份请发送「绑定 绑定码」。"
WELCOME = "不客气！有需要随时发消息给我。"
NOTED = "好的。有需要随时发消息给我，发送「帮助」查看可以使用的命令。"

courtesy = Conversation("courtesy", title="寒暄", cues=(*GREETINGS, *THANKS, *NODS))


def _only(text: str, words: tuple[str, ...]) -> bool:
    """`text` is made of `words` alone (with fillers: 谢谢老师, 好的呀, 收到！)."""
    rest = text
    for word in sorted(words, key=len, reverse=True):
        rest = rest.replace(word, "")
    return len(without_emoji(rest).strip(FILLERS)) == 0 and rest != text


@courtesy.on_event("text", "voice")
def answer(msg: Incoming, ctx: Context) -> Reply | None:
    text = msg.text.lower().strip()
    if not without_emoji(text) and not any(w in text for w in THANKS + NODS):
        return None
    if len(without_emoji(text)) > 16:
        return None
    if _only(text, GREETINGS):
        return Reply.end(HELLO.format(name=ctx.person.name) if ctx.person is not None else HELLO_STRANGER)
    if _only(text, THANKS + NODS):
        return Reply.end(WELCOME if any(w in text for w in THANKS) else NOTED)
    return None
