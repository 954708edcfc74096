"""The service layer: every change of domain state is one function here.

A service function opens the unit of work (`unit_of_work`), locks what it changes
(`locked`), checks the transition rules, changes the rows and writes the audit row
naming the actor, all in one transaction. Doors (the CLI, the console, the JSON
API, flow actions, jobs) only translate their input into these calls and render
the result or the `ServiceError` they raise.
"""

from ivr.services.unit import (
    Actor,
    Conflict,
    IllegalTransition,
    Invalid,
    NotFound,
    ServiceError,
    audit,
    locked,
    serialized,
    unit_of_work,
)

__all__ = [
    "Actor",
    "Conflict",
    "IllegalTransition",
    "Invalid",
    "NotFound",
    "ServiceError",
    "audit",
    "locked",
    "serialized",
    "unit_of_work",
]
