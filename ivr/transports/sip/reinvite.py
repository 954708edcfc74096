"""A re-INVITE inside an established call: new media address, codec, or hold.

The new offer is applied to the call's RTP stream (address, codec, DTMF payload
type, whether we send at all) and answered from the call's own `LocalSdp`, so
the o= session id stays and its version moves only when our answer changes.
An offer we cannot read gets 400, one we cannot serve 488 (with a Warning
saying why), and then the call goes on exactly as before (RFC 3261 14.2).
An offerless re-INVITE gets our current description again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ivr.transports.sip.endpoint import ALLOW, Addr
from ivr.transports.sip.message import SipMessage
from ivr.transports.sip.sdp import SdpError, SdpSyntaxError
from ivr.transports.sip.sdp import parse as parse_sdp

if TYPE_CHECKING:
    from ivr.transports.sip.phone import SipPhone
    from ivr.transports.sip.session import CallSession

log = logging.getLogger(__name__)


def sdp_refusal(exc: SdpError) -> tuple[int, str, list[tuple[str, str]]]:
    """The status, reason and headers that refuse an SDP offer."""
    warning = ("Warning", f'399 hotline-ivr "{exc}"')
    if isinstance(exc, SdpSyntaxError):
        return 400, "Bad Request (SDP)", [warning]
    return 488, "Not Acceptable Here", [warning]


def answer_reinvite(phone: SipPhone, session: CallSession, msg: SipMessage, addr: Addr) -> None:
    ep = phone.endpoint
    headers = [("Contact", f"<sip:ivr@{ep.contact_host}>"), ("Allow", ALLOW)]
    tag = session.dialog.local_tag
    stream = session.media.stream
    if not msg.body.strip():
        body = session.local_sdp.render(session.rtp_port, (stream.codec,), stream.event_pt)
        ep.respond(msg, addr, 200, "OK", to_tag=tag, body=body, headers=headers)
        return
    try:
        offer = parse_sdp(msg.body)
        body, codec = session.local_sdp.answer(offer, session.rtp_port)
    except SdpError as exc:
        status, reason, extra = sdp_refusal(exc)
        log.warning("re-INVITE of call %s refused (%d): %s", session.call_id, status, exc)
        ep.respond(msg, addr, status, reason, to_tag=tag, headers=extra)
        return
    # c=0.0.0.0 (RFC 2543 hold) names no address: keep sending (if at all) where we did.
    remote = stream.remote if offer.host == "0.0.0.0" else (offer.host, offer.port)
    stream.update(remote, codec, offer.event_pt, sending=offer.wants_audio)
    session.note(
        f"re-INVITE: {remote[0]}:{remote[1]} codec {codec} {offer.direction}"
        + ("" if offer.wants_audio else " (on hold: not sending)")
    )
    ep.respond(msg, addr, 200, "OK", to_tag=tag, body=body, headers=headers)
