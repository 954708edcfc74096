"""Twilio voice webhooks: signed requests in, TwiML out (the web half of the Twilio transport)."""
