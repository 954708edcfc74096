"""Twilio: the core half of the Twilio transport (no web framework here).

steps.py advances a call's flow one webhook at a time and renders TwiML
(twiml.py); media.py fetches recordings with the account credentials;
dialer.py places survey calls through the REST API.
"""

PROVIDER = "twilio"
