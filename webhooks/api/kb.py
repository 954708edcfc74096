"""The knowledge base through the API: search valid articles, read one, answer a 咨询 with one."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ivr.kb.shown import article_dict
from ivr.queries import kb
from ivr.queries.tickets import MAX_ID
from ivr.services import Actor
from ivr.services import tickets as service
from webhooks.api.errors import ApiError
from webhooks.api.params import Answer, kb_query, no_query, parse_body
from webhooks.api.tickets import changed_response, if_match
from webhooks.api.unit import authorized, bp, hotline, unit


@bp.get("/kb")
def search_kb() -> ResponseReturnValue:
    with unit() as u:
        question, limit = kb_query(request.args)
        today = u.now.astimezone(u.app.settings.tz).date()
        hits = kb.search(u.session, question, today, limit)
        return jsonify(items=[article_dict(h.article, h.score) for h in hits])


@bp.get(f"/kb/<int(min=1, max={MAX_ID}):article_id>")
def get_article(article_id: int) -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        article = kb.get(u.session, article_id)
        if article is None:
            raise ApiError(404, f"no article {article_id}")
        return jsonify(article_dict(article))


@bp.post("/tickets/<number>/answer")
def answer_ticket(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized()
    no_query(request.args)
    article = parse_body(Answer).article
    changed = service.answer_from_article(
        app, Actor.api(caller.token_name), number, article, expected_version=if_match()
    )
    return changed_response(caller, changed)
