"""SIP transport: pyVoIP-based media, our own signalling, inbound runner and dialer."""
