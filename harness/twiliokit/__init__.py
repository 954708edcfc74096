"""A Twilio that runs here: a signing webhook driver and a fake of the REST API."""

from .driver import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    HANGUP,
    PUBLIC_BASE,
    Callee,
    DriverCall,
    FlaskTransport,
    HttpTransport,
    Reply,
    Speak,
    TwilioDriver,
    new_sid,
)
from .fake_api import FakeTwilioApi

__all__ = [
    "ACCOUNT_SID",
    "AUTH_TOKEN",
    "HANGUP",
    "PUBLIC_BASE",
    "Callee",
    "DriverCall",
    "FakeTwilioApi",
    "FlaskTransport",
    "HttpTransport",
    "Reply",
    "Speak",
    "TwilioDriver",
    "new_sid",
]
