"""`ivr campaign run`'s dialing in its own process (killed with -9 by
test_survey_campaign_sip.py).

argv: settings JSON file, campaign id, routes JSON ({phone: "host:port"}), ISO time.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path

from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.surveys.run import run_campaign
from ivr.transports.sip.dialer import SipDialer
from ivr.transports.sip.service import build_phone


class RoutedSipDialer(SipDialer):
    """The real SIP dialer; each citizen's number leads to its own SIPp callee."""

    def __init__(self, phone, routes: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
        super().__init__(phone)
        self.routes = routes

    def uri_for(self, number_or_uri: str) -> str:
        return f"sip:{number_or_uri}@{self.routes[number_or_uri]}"


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    settings = Settings.model_validate_json(Path(sys.argv[1]).read_text())
    campaign_id = int(sys.argv[2])
    routes = json.loads(sys.argv[3])
    clock = FixedClock(datetime.fromisoformat(sys.argv[4]))
    app = Hotline.open(settings, clock)
    phone = build_phone(app, load_asr=False)
    phone.start()
    print("campaign run started", flush=True)
    run_campaign(app, RoutedSipDialer(phone, routes), campaign_id)
    phone.stop()


if __name__ == "__main__":
    main()
