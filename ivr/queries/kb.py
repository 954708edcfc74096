"""Reading the knowledge base: full-text search of articles valid on a day, and lists.

SQLite: the FTS5 table `kb_fts` (rowid = article id), ranked by BM25. PostgreSQL: the
GIN index on to_tsvector('simple', terms), ranked by ts_rank_cd. Both match any of
the question's words (ivr.kb.terms) and leave out articles not valid on `day`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, text
from sqlalchemy.orm import Session

from ivr.kb.terms import words
from ivr.store.models import KbArticle

MAX_WORDS = 24  # a long statement: its first words say what it is about


@dataclass(frozen=True)
class Hit:
    article: KbArticle
    score: float


def valid_on(day: date) -> ColumnElement[bool]:
    return and_(
        or_(KbArticle.valid_from.is_(None), KbArticle.valid_from <= day),
        or_(KbArticle.valid_to.is_(None), KbArticle.valid_to >= day),
    )


def search(session: Session, question: str, day: date, limit: int = 3) -> list[Hit]:
    """The articles valid on `day` that best answer `question`, best first."""
    terms = words(question)[:MAX_WORDS]
    if not terms:
        return []
    if session.get_bind().dialect.name == "sqlite":
        ranked = text(
            "SELECT a.id AS id, -bm25(kb_fts) AS score FROM kb_fts "
            "JOIN kb_articles a ON a.id = kb_fts.rowid "
            "WHERE kb_fts MATCH :match "
            "AND (a.valid_from IS NULL OR a.valid_from <= :day) "
            "AND (a.valid_to IS NULL OR a.valid_to >= :day) "
            "ORDER BY bm25(kb_fts), a.id LIMIT :n"
        ).bindparams(match=" OR ".join(f'"{t}"' for t in terms), day=day.isoformat(), n=limit)
        found = [(int(r.id), float(r.score)) for r in session.execute(ranked)]
        ids = [i for i, _ in found]
        rows = session.scalars(select(KbArticle).where(KbArticle.id.in_(ids)))
        articles = {a.id: a for a in rows}
        return [Hit(articles[i], score) for i, score in found if i in articles]
    vector = func.to_tsvector("simple", KbArticle.terms)
    query = func.websearch_to_tsquery("simple", " or ".join(terms))
    score = func.ts_rank_cd(vector, query).label("score")
    stmt = (
        select(KbArticle, score)
        .where(vector.op("@@")(query), valid_on(day))
        .order_by(score.desc(), KbArticle.id)
        .limit(limit)
    )
    return [Hit(article, float(s)) for article, s in session.execute(stmt)]


def listing(
    session: Session, *, department: str | None = None, day: date | None = None
) -> list[KbArticle]:
    """Every article (or one department's), by title; `day`: only those valid then."""
    stmt: Select[tuple[KbArticle]] = select(KbArticle).order_by(KbArticle.title)
    if department:
        stmt = stmt.where(KbArticle.department == department)
    if day is not None:
        stmt = stmt.where(valid_on(day))
    return list(session.scalars(stmt))


def get(session: Session, article_id: int) -> KbArticle | None:
    return session.get(KbArticle, article_id)
