"""An article as the API, the CLI and the console show it."""

from __future__ import annotations

from typing import Any

from ivr.store.models import KbArticle


def article_dict(article: KbArticle, score: float | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": article.id,
        "title": article.title,
        "body": article.body,
        "department": article.department,
        "keywords": list(article.keywords or []),
        "valid_from": article.valid_from.isoformat() if article.valid_from else None,
        "valid_to": article.valid_to.isoformat() if article.valid_to else None,
        "source": article.source,
        "updated_at": article.updated_at.isoformat(),
    }
    if score is not None:
        shown["score"] = round(score, 4)
    return shown
