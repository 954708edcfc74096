"""The two transports: SIP (pyVoIP media, own signalling) and Twilio (webhooks + REST)."""
