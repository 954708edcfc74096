"""`ivr kb ...`: import, search, list and show knowledge-base articles."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ivr.cli.common import Ctx, fail, pass_ctx
from ivr.kb.importer import ArticleFileError, read_articles
from ivr.kb.shown import article_dict
from ivr.queries import kb as queries
from ivr.services import Actor, ServiceError
from ivr.services import kb as service


@click.group()
def kb() -> None:
    """The knowledge base (知识库): articles operators answer consultations with."""


@kb.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def kb_import(c: Ctx, path: Path) -> None:
    """Add or update the articles of a .md, .csv or .xlsx file (same title and department:
    updated), all or nothing."""
    try:
        articles = read_articles(path)
    except ArticleFileError as exc:
        fail(str(exc))
    if not articles:
        fail(f"{path}: no articles found")
    try:
        done = service.import_articles(c.hotline(), Actor.cli(), articles, path.name)
    except ServiceError as exc:
        fail(exc.message)
    click.echo(f"{path.name}: {done.created} added, {done.updated} updated")


@kb.command("search")
@click.argument("question")
@click.option("--limit", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def kb_search(c: Ctx, question: str, limit: int, as_json: bool) -> None:
    """The articles valid today that best answer QUESTION."""
    app = c.hotline()
    with app.db.read() as s:
        hits = queries.search(s, question, c.today(), limit)
        shown = [article_dict(h.article, h.score) for h in hits]
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
        return
    if not shown:
        click.echo("no article answers this")
    for a in shown:
        click.echo(f"#{a['id']}  {a['title']}  [{a['department'] or '-'}]  {a['score']}")


@kb.command("list")
@click.option("--department", default=None)
@click.option("--valid", is_flag=True, help="Only articles valid today.")
@pass_ctx
def kb_list(c: Ctx, department: str | None, valid: bool) -> None:
    app = c.hotline()
    with app.db.read() as s:
        rows = queries.listing(s, department=department, day=c.today() if valid else None)
        for a in rows:
            until = a.valid_to.isoformat() if a.valid_to else "长期"
            click.echo(f"#{a.id}  {a.title}  [{a.department or '-'}]  至 {until}")


@kb.command("show")
@click.argument("article_id", type=click.IntRange(1, 2**31 - 1))
@pass_ctx
def kb_show(c: Ctx, article_id: int) -> None:
    app = c.hotline()
    with app.db.read() as s:
        article = queries.get(s, article_id)
        if article is None:
            fail(f"no article {article_id}", 1)
        click.echo(json.dumps(article_dict(article), ensure_ascii=False, indent=2))
