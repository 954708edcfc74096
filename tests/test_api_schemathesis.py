"""schemathesis against the real Flask app: no server errors, responses as documented.

Each operation of /api/openapi.json, on SQLite and on PostgreSQL, gets schema-valid
(positive) and schema-violating (negative) requests with a supervisor's token, on a
database seeded with drafts, a completed ticket and a campaign with results; path
parameters often name those, so that updates, accepts and completions really happen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis.generation.case import Case
from schemathesis.generation.modes import GenerationMode
from sqlalchemy import select

from ivr.services.lifecycle import return_ticket
from ivr.services.tickets import accept
from ivr.store import Ticket
from webhooks.api.openapi import DOCUMENT

from .apikit import (
    BACKENDS,
    CONSULTATION,
    EXPIRED_DRUGS,
    GAS_LEAK,
    SETUP,
    ApiRig,
    api_rig,
    hotline_on,
)

pytestmark = pytest.mark.db  # both databases through apikit.hotline_on


def _has_input(item: dict[str, Any], op: dict[str, Any]) -> bool:
    return bool(item.get("parameters") or op.get("parameters") or op.get("requestBody"))


# (path, method, mode): negative requests only where there is an input to get wrong.
OPERATIONS = [
    (path, method.upper(), mode)
    for path, item in DOCUMENT["paths"].items()
    for method, op in item.items()
    if method != "parameters"
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or _has_input(item, op)
]
# Path parameter -> values that name seeded tickets and campaigns.
SEEDED: dict[str, list[Any]] = {}
# Where generated path parameters are swapped for seeded ones: positive runs only (a
# negative run's out-of-range id must stay out of range).
SWAP: dict[str, list[Any]] = {}


@pytest.fixture(params=BACKENDS)
def rig(request: pytest.FixtureRequest) -> Iterator[ApiRig]:
    with hotline_on(request, request.param) as hotline, api_rig(hotline) as rig:
        SEEDED["number"] = [
            # First: hypothesis samples the first values most (an answer needs a 咨询).
            rig.draft(CONSULTATION, line="12345", digits="1"),
            rig.draft(),
            rig.draft(EXPIRED_DRUGS, line="12345", digits=""),
            rig.draft(GAS_LEAK, line="12345", digits="3"),
            rig.completed(),
        ]
        SEEDED["article_id"] = [rig.article()]
        SEEDED["campaign_id"] = [rig.campaign_with_scores(["satisfied", "unsatisfied"])]
        SEEDED["number"] += loop_tickets(rig)
        yield rig
        SEEDED.clear()
        SWAP.clear()


def loop_tickets(rig: ApiRig) -> list[str]:
    """Tickets the loop's operations can change: two registered (to extend, return or
    supervise), one returned (to re-dispatch), and the 不满意 under review."""
    registered = [rig.draft(), rig.draft()]
    for number in registered:
        accept(rig.hotline, SETUP, number)
    returned = rig.draft()
    accept(rig.hotline, SETUP, returned)
    return_ticket(rig.hotline, SETUP, returned, "不属于本部门职责")
    with rig.hotline.db.read() as s:
        review = list(s.scalars(select(Ticket.number).where(Ticket.status == "review")))
    assert review
    return [*registered, returned, *review]


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Path parameters name seeded tickets and campaigns as often as generated values."""
    params = path_parameters or {}
    for name, values in SWAP.items():
        if name in params:
            return st.sampled_from([*values, params[name]]).map(
                lambda v, name=name: {**params, name: v}
            )
    return st.just(path_parameters)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """The original of a duplicate, the article of an answer: seeded ones as often as
    generated values."""
    if isinstance(body, dict) and "of" in body and SWAP.get("number"):
        return st.sampled_from([*SWAP["number"], body["of"]]).map(lambda v: {**body, "of": v})
    if isinstance(body, dict) and "article" in body and SWAP.get("article_id"):
        return st.sampled_from([*SWAP["article_id"], body["article"]]).map(
            lambda v: {**body, "article": v}
        )
    return st.just(body)


@schemathesis.hook
def map_headers(context: Any, headers: dict[str, Any] | None) -> Any:
    """No If-Match in positive runs: a made-up version is rightly refused (412)."""
    if headers and SWAP:
        return {k: v for k, v in headers.items() if k.lower() != "if-match"}
    return headers


@pytest.mark.parametrize(("path", "method", "mode"), OPERATIONS)
def test_api_conforms_to_its_document(
    rig: ApiRig, path: str, method: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", rig.app)
    operation = schema[path][method]
    auth = rig.auth("supervisor")
    statuses: set[int] = set()
    SWAP.clear()
    if mode is GenerationMode.POSITIVE:
        SWAP.update(SEEDED)

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: Case) -> None:
        # A query item with an empty name or an empty list is not sent at all: what is
        # left may be a valid request, which is no test of rejecting invalid ones.
        assume(all(name and value != [] for name, value in (case.query or {}).items()))
        statuses.add(case.call_and_validate(headers=auth).status_code)

    check()
    if mode is GenerationMode.POSITIVE:  # the requests reached real tickets and campaigns
        assert any(200 <= status < 300 for status in statuses), statuses
