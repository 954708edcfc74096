"""Test and benchmark harness: real SIP peers, a Twilio driver, the IVR under test, data.

Shared by `tests/` and `bench/` (bench imports only `ivr`, `webhooks` and this package).
Not part of the wheel. Nothing here depends on pytest: a missing peer or file raises
an ordinary exception, which the tests turn into a skip where that is allowed.
"""
