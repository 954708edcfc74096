"""kb_terms: how many articles hold each search word; PostgreSQL's KB index kept lean

Search matches a question's rarer words and ranks by all of them (ivr.queries.kb); the
counts come from kb_terms, filled here from the articles' `terms`. On PostgreSQL the
GIN index stops using its pending list (without autovacuum the list was scanned by every
search: ~500 pages at 10,000 articles) and the stored tsvector stays in the row
(STORAGE MAIN) instead of TOAST, so ranking a candidate reads no TOAST pages.

Revision ID: 0013c
Revises: 0013b
Create Date: 2026-12-06
"""

from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013c"
down_revision: str | None = "0013b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    kb_terms = op.create_table(
        "kb_terms",
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("articles", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_kb_terms")),
    )
    counts: Counter[str] = Counter()
    for (terms,) in op.get_bind().execute(sa.text("SELECT terms FROM kb_articles")):
        counts.update(set(terms.split()))
    if counts:
        op.bulk_insert(kb_terms, [{"term": t, "articles": n} for t, n in counts.items()])
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER INDEX ix_kb_articles_terms_fts SET (fastupdate = off)")
        op.execute("SELECT gin_clean_pending_list('ix_kb_articles_terms_fts')")
        op.execute("ALTER TABLE kb_articles ALTER COLUMN terms_tsv SET STORAGE MAIN")
        op.execute("UPDATE kb_articles SET terms = terms")  # rewrites the stored vectors


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE kb_articles ALTER COLUMN terms_tsv SET STORAGE EXTENDED")
        op.execute("ALTER INDEX ix_kb_articles_terms_fts RESET (fastupdate)")
    op.drop_table("kb_terms")
