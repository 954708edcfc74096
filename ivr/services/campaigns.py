"""Satisfaction callback campaigns: create (from filters or a CSV list), pause, resume.

Status rules (a campaign is created, running, paused or done):
- create plans the first attempts at once and leaves the campaign `created`:
  nothing dials it until it is resumed (or `ivr campaign run` takes it);
- pause: created or running -> paused (calls in progress finish);
- start: created -> running (its first run); resume: paused -> running. A resume of
  a campaign that never ran is its start, audited as `campaign.start`;
- a done campaign changes no more, and a change to the status it already has is
  refused rather than audited as if it did something.
Which tickets a campaign calls is decided in `ivr.surveys.campaigns`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy.orm import Session

from ivr.services.unit import (
    Actor,
    IllegalTransition,
    Invalid,
    NotFound,
    audit,
    locked,
    serialized,
    unit_of_work,
)
from ivr.store.models import Campaign
from ivr.surveys.campaigns import Filters, plan_completed, plan_listed

if TYPE_CHECKING:
    from ivr.app import Hotline

# Two plannings at once could both take a ticket neither has planned yet.
PLANNING_LOCK = "ivr.campaigns.planning"
MAX_NAME = 128
# The statuses each change may start from.
PAUSABLE = ("created", "running")
RESUMABLE = ("created", "paused")
STATUS_ZH = {"created": "未开始", "running": "进行中", "paused": "已暂停", "done": "已完成"}
VERB_ZH = {"start": "开始", "pause": "暂停", "resume": "继续"}


class Planned(NamedTuple):
    campaign_id: int
    planned: int


def _new_campaign(session: Session, app: Hotline, name: str, filters: dict[str, Any]) -> Campaign:
    name = name.strip()
    if not name:
        raise Invalid("a campaign needs a name", zh="请填写活动名称")
    if len(name) > MAX_NAME:
        raise Invalid(
            f"campaign name too long: at most {MAX_NAME} characters",
            zh=f"活动名称不能超过 {MAX_NAME} 字",
        )
    now = app.clock.now()
    campaign = Campaign(
        name=name, status="created", filters=filters, created_at=now, updated_at=now
    )
    session.add(campaign)
    session.flush()
    return campaign


def create_campaign(
    app: Hotline, actor: Actor, name: str, filters: Filters | None = None
) -> Planned:
    """A campaign over the completed, not yet surveyed tickets matching `filters`."""
    filters = filters or Filters()
    with unit_of_work(app) as s:
        serialized(s, PLANNING_LOCK)
        campaign = _new_campaign(s, app, name, filters.as_dict())
        planned = plan_completed(app, s, campaign, filters, campaign.created_at)
        _audit_created(s, actor, campaign, planned, skipped=0)
        return Planned(campaign.id, planned)


def create_campaign_from_csv(
    app: Hotline, actor: Actor, name: str, csv_text: str, source: str
) -> tuple[Planned, list[str]]:
    """A campaign over a list of `ticket number,phone` lines; the lines skipped and why."""
    with unit_of_work(app) as s:
        serialized(s, PLANNING_LOCK)
        campaign = _new_campaign(s, app, name, {"csv": source})
        planned, problems = plan_listed(app, s, campaign, csv_text, campaign.created_at)
        _audit_created(s, actor, campaign, planned, skipped=len(problems))
        return Planned(campaign.id, planned), problems


def _audit_created(
    session: Session, actor: Actor, campaign: Campaign, planned: int, skipped: int
) -> None:
    detail = {
        "campaign": campaign.id,
        "name": campaign.name,
        "filters": campaign.filters,
        "planned": planned,
    }
    if skipped:
        detail["skipped"] = skipped
    audit(session, actor, "campaign.create", None, detail, campaign.created_at)


def pause_campaign(app: Hotline, actor: Actor, campaign_id: int) -> None:
    """Stop claiming new calls; calls in progress finish."""
    _change_status(app, actor, campaign_id, "pause", PAUSABLE, "paused")


def resume_campaign(app: Hotline, actor: Actor, campaign_id: int) -> None:
    """Let the scheduler (or `ivr campaign run`) claim the campaign's calls."""
    _change_status(app, actor, campaign_id, "resume", RESUMABLE, "running")


def start_campaign(app: Hotline, actor: Actor, campaign_id: int) -> None:
    """A created campaign's first run (only a created one starts)."""
    _change_status(app, actor, campaign_id, "start", ("created",), "running")


def _change_status(
    app: Hotline, actor: Actor, campaign_id: int, verb: str, allowed: tuple[str, ...], new: str
) -> None:
    with unit_of_work(app) as s:
        campaign = locked(s, Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id}", zh=f"没有回访活动 {campaign_id}")
        old = campaign.status
        if old not in allowed:
            raise IllegalTransition(
                f"campaign {campaign_id} is {old}; it cannot {verb}",
                zh=f"回访活动 {campaign_id} {STATUS_ZH.get(old, old)}，不能{VERB_ZH[verb]}",
                status=old,
                allowed=list(allowed),
            )
        if verb == "resume" and old == "created":
            verb = "start"  # it never ran: this is its start
        now = app.clock.now()
        campaign.status, campaign.updated_at = new, now
        detail = {"campaign": campaign_id, "status": {"old": old, "new": new}}
        audit(s, actor, f"campaign.{verb}", None, detail, now)
