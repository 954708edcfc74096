"""A re-INVITE inside an established call: new media address, codec, or hold.

The new offer is applied to the call's RTP stream (address, codec, DTMF payload
type, whether we send at all) and answered from the call's own `LocalSdp`, so
the o= session id stays and its version moves only when our answer changes.
An offer we cannot read gets 400, one we cannot serve 488 (with a Warning
saying why), and then the call goes on exactly as before (RFC 3261 14.2).
An offerless re-INVITE gets our current description as the offer, and the
answer in the peer's ACK is applied the same way. The 200 is re-sent until
the ACK comes, as for the first INVITE.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ivr.transports.sip.endpoint import T1, Addr
from ivr.transports.sip.message import SipMessage
from ivr.transports.sip.sdp import (
    DEFAULT_EVENT_PT,
    PCMA,
    PCMU,
    MediaOffer,
    SdpError,
    SdpSyntaxError,
    choose_codec,
)
from ivr.transports.sip.sdp import parse as parse_sdp

if TYPE_CHECKING:
    from ivr.transports.sip.phone import Acked, SipPhone
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
    tag = session.dialog.local_tag
    stream = session.media.stream
    if not msg.body.strip():
        # Offerless: our offer goes in the 200, the peer's answer comes in the ACK.
        codecs = (stream.codec, PCMA if stream.codec == PCMU else PCMU)  # ours first
        body = session.local_sdp.render(
            session.rtp_port, codecs, stream.event_pt or DEFAULT_EVENT_PT
        )
        acked = phone.answer_until_acked(msg, addr, tag, body)
        threading.Thread(
            target=_answer_in_ack, args=(session, acked), daemon=True, name="sip-reinvite-ack"
        ).start()
        return
    try:
        offer = parse_sdp(msg.body)
        body, codec = session.local_sdp.answer(offer, session.rtp_port)
    except SdpError as exc:
        status, reason, extra = sdp_refusal(exc)
        log.warning("re-INVITE of call %s refused (%d): %s", session.call_id, status, exc)
        ep.respond(msg, addr, status, reason, to_tag=tag, headers=extra)
        return
    _apply(session, offer, codec)
    phone.answer_until_acked(msg, addr, tag, body)


def _apply(session: CallSession, offer: MediaOffer, codec: int) -> None:
    stream = session.media.stream
    # c=0.0.0.0 (RFC 2543 hold) names no address: keep sending (if at all) where we did.
    remote = stream.remote if offer.host == "0.0.0.0" else (offer.host, offer.port)
    stream.update(remote, codec, offer.event_pt, sending=offer.wants_audio)
    session.note(
        f"re-INVITE: {remote[0]}:{remote[1]} codec {codec} {offer.direction}"
        + ("" if offer.wants_audio else " (on hold: not sending)")
    )


def _answer_in_ack(session: CallSession, acked: Acked) -> None:
    """Apply the SDP answer the peer put in its ACK (an unusable one changes nothing)."""
    if not acked.event.wait(64 * T1) or not acked.body.strip():
        return
    try:
        answer = parse_sdp(acked.body)
        _apply(session, answer, choose_codec(answer))
    except SdpError as exc:
        log.warning("call %s: the SDP answer in the ACK is unusable (%s)", session.call_id, exc)
