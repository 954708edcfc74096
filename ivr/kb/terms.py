"""Search words of articles and of what callers ask: jieba in search mode.

Chinese has no spaces; both full-text engines (SQLite FTS5, PostgreSQL's 'simple'
configuration) split on them. So articles and questions are cut into words here,
once, and the engines index and match space-separated words. Search mode also
yields the parts of long words (社保卡 -> 社保, 社保卡), so 社保卡补办 finds an
article titled 社会保障卡补办 only through its keywords, but 社保 finds 社保卡.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ivr.asr.normalize import normalize_transcript

if TYPE_CHECKING:
    import jieba

# Words of asking, not of what is asked about (any article would match them).
_STOP_TEXT = """
我 我们 你 你们 您 他 她 它 这 那 这个 那个 的 了 吗 呢 吧 啊 呀 嗯 哦 就是 然后 一下
请问 问问 想问 问一下 咨询 我想 想要 需要 要 能 能不能 可以 可不可以 怎么 怎么办 怎样 如何
什么 哪里 哪儿 哪个 多少 是不是 有没有 还是 或者 现在 今天 谢谢 你好 您好 这边 那边 一个
办理 办 去 到 在 有 没有 是 和 跟 与 及 或 给 让 被 把 对 从 为 为了 以及 应该
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"[\w]+")
_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def _jieba() -> jieba.Tokenizer:
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            import jieba as jieba_module

            jieba_module.setLogLevel(logging.WARNING)
            tokenizer = jieba_module.Tokenizer()
            tokenizer.initialize()
            _tokenizer = tokenizer
        return _tokenizer


def words(text: str) -> list[str]:
    """The search words of `text`, in order, each once; fillers and 1-character words dropped."""
    seen: dict[str, None] = {}
    for chunk in _WORD.findall(normalize_transcript(text).casefold()):
        for word in _jieba().cut_for_search(chunk, HMM=True):
            if len(word) > 1 and word not in STOP_WORDS:
                seen.setdefault(word, None)
    return list(seen)


def index_text(title: str, keywords: Iterable[str], body: str) -> str:
    """What the full-text index holds for an article: title and keywords count twice."""
    heading = words(" ".join([title, *keywords]))
    return " ".join([*heading, *heading, *words(body)])
