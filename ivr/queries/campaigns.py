"""Campaigns as the API, the console and `ivr campaign status` show them: with progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.store.models import Campaign
from ivr.surveys.campaigns import progress_of

OUTCOME = "outcome:"


@dataclass(frozen=True)
class CampaignView:
    id: int
    name: str
    status: str
    filters: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    # attempts by status ("planned", "done", ...) and finished ones by "outcome:<outcome>"
    progress: dict[str, int]

    @property
    def attempts(self) -> int:
        return sum(v for k, v in self.progress.items() if not k.startswith(OUTCOME))

    @property
    def done(self) -> int:
        return self.progress.get("done", 0)

    @property
    def outcomes(self) -> dict[str, int]:
        return {
            k.removeprefix(OUTCOME): v for k, v in self.progress.items() if k.startswith(OUTCOME)
        }


def _views(session: Session, campaigns: list[Campaign]) -> list[CampaignView]:
    counts = progress_of(session, [c.id for c in campaigns])
    return [
        CampaignView(
            c.id, c.name, c.status, dict(c.filters), c.created_at, c.updated_at, counts[c.id]
        )
        for c in campaigns
    ]


def all_campaigns(session: Session) -> list[CampaignView]:
    """Every campaign, newest first."""
    return _views(session, list(session.scalars(select(Campaign).order_by(Campaign.id.desc()))))


def one_campaign(session: Session, campaign_id: int) -> CampaignView | None:
    campaign = session.get(Campaign, campaign_id)
    return None if campaign is None else _views(session, [campaign])[0]
