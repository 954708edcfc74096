"""Knowledge-base changes (知识库维护): add, edit, delete and import articles.

Each function is one unit of work with one audit row. On SQLite the FTS5 table
`kb_fts` is written in the same transaction as the article, so search never sees
an article without its index entry or the reverse; PostgreSQL indexes the
`terms` column itself. The per-word article counts (`kb_terms`) change in the same
transaction too; every change takes the knowledge base's lock, so counts of one
word are never updated by two transactions at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ivr.kb.importer import ArticleData
from ivr.kb.terms import index_text
from ivr.services.unit import Actor, Invalid, NotFound, audit, locked, serialized, unit_of_work
from ivr.store.models import KbArticle, KbTerm

if TYPE_CHECKING:
    from ivr.app import Hotline

KB_LOCK = "kb-articles"


@dataclass(frozen=True)
class Imported:
    created: int
    updated: int


def _check(app: Hotline, data: ArticleData) -> None:
    if not data.title.strip() or not data.body.strip():
        raise Invalid("an article needs a title and a body")
    if len(data.title) > 200:
        raise Invalid("a title has at most 200 characters")
    known = {d.name for d in app.settings.departments}
    if data.department and data.department not in known:
        raise Invalid(f"unknown department {data.department!r} (not in config.yaml)")
    if data.valid_from and data.valid_to and data.valid_to < data.valid_from:
        raise Invalid("valid_to is before valid_from")


def _write(
    session: Session, article: KbArticle, data: ArticleData, app: Hotline, counts: Counter[str]
) -> None:
    now = app.clock.now()
    counts.subtract(set((article.terms or "").split()))
    article.title, article.body = data.title.strip(), data.body.strip()
    article.department, article.keywords = data.department, list(data.keywords)
    article.valid_from, article.valid_to, article.source = (
        data.valid_from,
        data.valid_to,
        data.source,
    )
    article.terms = index_text(article.title, article.keywords, article.body)
    counts.update(set(article.terms.split()))
    article.updated_at = now
    if article.id is None:
        article.created_at = now
        session.add(article)
    session.flush()
    _index(session, article.id, article.terms)


def _index(session: Session, article_id: int, terms: str | None) -> None:
    if session.get_bind().dialect.name != "sqlite":
        return
    session.execute(text("DELETE FROM kb_fts WHERE rowid = :id"), {"id": article_id})
    if terms is not None:
        session.execute(
            text("INSERT INTO kb_fts (rowid, terms) VALUES (:id, :terms)"),
            {"id": article_id, "terms": terms},
        )


def _count(session: Session, counts: Counter[str]) -> None:
    """Add `counts` (articles gained or lost per word) to kb_terms."""
    changed = [{"term": t, "articles": n} for t, n in sorted(counts.items()) if n]
    if not changed:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(KbTerm)
    upsert = stmt.on_conflict_do_update(
        index_elements=[KbTerm.term], set_={"articles": KbTerm.articles + stmt.excluded.articles}
    )
    session.execute(upsert, changed)
    if any(c["articles"] < 0 for c in changed):
        session.execute(delete(KbTerm).where(KbTerm.articles <= 0))


def _summary(article: KbArticle) -> dict[str, object]:
    return {
        "article": article.id,
        "title": article.title,
        "department": article.department,
        "valid_to": article.valid_to.isoformat() if article.valid_to else None,
    }


def save_article(
    app: Hotline, actor: Actor, data: ArticleData, article_id: int | None = None
) -> int:
    """Add an article (article_id None) or replace one's fields; its id."""
    _check(app, data)
    counts: Counter[str] = Counter()
    with unit_of_work(app) as session:
        serialized(session, KB_LOCK)
        if article_id is None:
            article = KbArticle()
            action = "kb.create"
        else:
            found = locked(session, KbArticle, article_id)
            if found is None:
                raise NotFound(f"no article {article_id}")
            article, action = found, "kb.update"
        _write(session, article, data, app, counts)
        _count(session, counts)
        audit(session, actor, action, None, _summary(article), app.clock.now())
        return article.id


def delete_article(app: Hotline, actor: Actor, article_id: int) -> None:
    with unit_of_work(app) as session:
        serialized(session, KB_LOCK)
        article = locked(session, KbArticle, article_id)
        if article is None:
            raise NotFound(f"no article {article_id}")
        summary = _summary(article)
        _index(session, article_id, None)
        _count(session, Counter({t: -1 for t in set(article.terms.split())}))
        session.delete(article)
        audit(session, actor, "kb.delete", None, summary, app.clock.now())


def import_articles(
    app: Hotline, actor: Actor, articles: list[ArticleData], source: str
) -> Imported:
    """Add or update (same title and department) every article, all or nothing."""
    for data in articles:
        _check(app, data)
    created = updated = 0
    counts: Counter[str] = Counter()
    with unit_of_work(app) as session:
        serialized(session, KB_LOCK)
        for data in articles:
            existing = session.scalars(
                select(KbArticle)
                .where(KbArticle.title == data.title.strip())
                .where(KbArticle.department == data.department)
                .with_for_update()
            ).one_or_none()
            _write(session, existing or KbArticle(), data, app, counts)
            created, updated = (created, updated + 1) if existing else (created + 1, updated)
        _count(session, counts)
        detail = {"source": source, "created": created, "updated": updated}
        audit(session, actor, "kb.import", None, detail, app.clock.now())
    return Imported(created, updated)
