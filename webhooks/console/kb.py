"""The knowledge base in the console: operators search it and answer a 咨询 with an
article (直接办结); supervisors add, edit and delete articles."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from ivr.kb.importer import ArticleData, keywords_of
from ivr.queries import kb as queries
from ivr.queries.tickets import MAX_ID
from ivr.services import ServiceError
from ivr.services import kb as service
from ivr.services import tickets as tickets_service
from ivr.services.ticket_rules import CONSULTATION
from ivr.services.unit import Invalid
from ivr.store.models import Role, Ticket
from webhooks.console import bp
from webhooks.console.auth import acting, hotline, require

SUGGESTED = 3
OPEN = ("draft", "registered", "rehandle")


def suggestions(session: Any, ticket: Ticket, today: date) -> list[queries.Hit]:
    """The articles beside an open 咨询 ticket's statement (none for other tickets)."""
    if ticket.category != CONSULTATION or ticket.status not in OPEN or not ticket.statement:
        return []
    return queries.search(session, ticket.statement, today, SUGGESTED)


@bp.get("/kb")
@require()
def kb_page() -> Any:
    app = hotline()
    question = request.args.get("q", "").strip()[:500]
    with app.db.read() as s:
        hits = queries.search(s, question, app.today(), 10) if question else []
        articles = [] if question else queries.listing(s)
        return render_template(
            "console/kb.html", question=question, hits=hits, articles=articles, today=app.today()
        )


def _form_article() -> ArticleData:
    form = request.form

    def day(name: str) -> date | None:
        value = form.get(name, "").strip()
        try:
            return date.fromisoformat(value) if value else None
        except ValueError:
            raise Invalid(f"日期格式不对：{value}（应为 年-月-日）") from None

    return ArticleData(
        title=form.get("title", "").strip(),
        body=form.get("body", "").strip(),
        department=form.get("department", "").strip(),
        keywords=keywords_of(form.get("keywords", "")),
        valid_from=day("valid_from"),
        valid_to=day("valid_to"),
        source=form.get("source", "").strip(),
    )


@bp.route("/kb/new", methods=["GET", "POST"])
@bp.route(f"/kb/<int(min=1, max={MAX_ID}):article_id>/edit", methods=["GET", "POST"])
@require(Role.SUPERVISOR)
def kb_edit(article_id: int | None = None) -> Any:
    app = hotline()
    article = None
    if article_id is not None:
        with app.db.read() as s:
            article = queries.get(s, article_id)
            if article is None:
                abort(404, description=f"没有编号为 {article_id} 的知识库文章")
    if request.method == "POST":
        try:
            saved = service.save_article(app, acting(), _form_article(), article_id)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            flash("已保存", "ok")
            return redirect(url_for("console.kb_edit", article_id=saved), 303)
    departments = [d.name for d in app.settings.departments]
    return render_template("console/kb_edit.html", a=article, departments=departments)


@bp.post(f"/kb/<int(min=1, max={MAX_ID}):article_id>/delete")
@require(Role.SUPERVISOR)
def kb_delete(article_id: int) -> Any:
    try:
        service.delete_article(hotline(), acting(), article_id)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("console.kb_edit", article_id=article_id), 303)
    flash("已删除", "ok")
    return redirect(url_for("console.kb_page"), 303)


@bp.post(f"/tickets/<int(min=1, max={MAX_ID}):ticket_id>/answer")
@require()
def ticket_answer(ticket_id: int) -> Any:
    """直接办结: the operator answered the consultation with an article."""
    back = redirect(url_for("console.ticket_page", ticket_id=ticket_id), 303)
    article = request.form.get("article", "")
    if not article.isdigit() or not 1 <= int(article) <= MAX_ID:
        flash("请选择一篇知识库文章", "error")
        return back
    try:
        seen = request.form.get("version")
        tickets_service.answer_from_article(
            hotline(), acting(), ticket_id, int(article), expected_version=seen
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return back
    flash("已直接办结", "ok")
    return back
