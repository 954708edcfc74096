"""What a survey answer does to its attempt and its ticket."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ivr.services import Actor
from ivr.services.tickets import record_survey_outcome
from ivr.store.models import SurveyAttempt

SURVEY = Actor.system("survey")
SCORES = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
    "no_response": "未评价",
}
# The second question (问题是否已解决), when the survey flow asks it.
RESOLVED = {"resolved": "已解决", "unresolved": "未解决"}


def record_score(session: Session, variables: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """Persist the score (and the answer to 问题是否已解决) of one attempt once; 不满意 puts
    the ticket under review for re-handling."""
    score = str(variables.get("score") or "no_response")
    if score not in SCORES:
        score = "no_response"
    attempt_id = variables.get("attempt_id")
    attempt = session.get(SurveyAttempt, int(attempt_id)) if attempt_id is not None else None
    if attempt is None:
        return {"score": score}
    if attempt.score is not None:  # a replayed request: the first answer stands
        return {"score": attempt.score}
    resolved = str(variables.get("resolved") or "") or None
    if resolved not in RESOLVED:
        resolved = None
    attempt.score = score
    attempt.resolved = resolved
    attempt.outcome = "no_response" if score == "no_response" else "answered"
    attempt.finished_at = at
    if score != "no_response":
        record_survey_outcome(session, SURVEY, attempt.ticket_id, score, at, resolved)
    return {"score": score, "resolved": resolved}
