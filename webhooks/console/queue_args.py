"""The queue page's address (?status=draft&q=...&page=2) as the one ticket query.

The console reads the same `TicketQuery` the API does; unlike the API it never
refuses a link: a value it does not know (an old bookmark, a hand-edited
address) is dropped and the page shows what the rest of the filter finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ivr.config import Settings
from ivr.queries.tickets import SEARCH_MAX, TicketQuery
from ivr.store.models import TicketStatus

ALL = "all"


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _known(value: str | None, known: list[str]) -> str | None:
    return value if value in known else None


@dataclass(frozen=True)
class QueueView:
    """What the queue shows: the query and the page number."""

    query: TicketQuery
    page: int = 1

    @classmethod
    def from_args(cls, args: Any, settings: Settings) -> QueueView:
        status = args.get("status", TicketStatus.DRAFT)
        text = (args.get("q") or "").replace("\x00", "").strip()[:SEARCH_MAX]
        urgent = args.get("urgent")
        page = args.get("page", "1")
        query = TicketQuery(
            status=None
            if status == ALL
            else _known(status, [s.value for s in TicketStatus]) or TicketStatus.DRAFT,
            line=_known(args.get("line"), [ln.number for ln in settings.lines]),
            category=_known(args.get("category"), [c.name for c in settings.categories]),
            department=_known(args.get("department"), [d.name for d in settings.departments]),
            urgent=(urgent == "1") if urgent in ("1", "0") else None,
            created_from=_day(args.get("from")),
            created_to=_day(args.get("to")),
            text=text or None,
        )
        return cls(query, int(page) if page.isascii() and page.isdigit() and len(page) < 7 else 1)

    def as_args(self, **override: Any) -> dict[str, str]:
        """The address's arguments for this view (and `override`), for links and forms."""
        q = self.query
        args = {
            "status": q.status or ALL,
            "line": q.line or "",
            "category": q.category or "",
            "department": q.department or "",
            "urgent": "" if q.urgent is None else ("1" if q.urgent else "0"),
            "from": q.created_from.isoformat() if q.created_from else "",
            "to": q.created_to.isoformat() if q.created_to else "",
            "q": q.text or "",
        }
        args.update({k: str(v) for k, v in override.items()})
        return {k: v for k, v in args.items() if v}
