"""Outbound SIP calls for satisfaction callbacks (满意度回访).

Never blocks a thread forever (pyVoIP 1.6.8 could hang holding its SIP lock on
486 or on a 200 without provisionals, and left 486 un-ACKed, defect 5): every
wait has a deadline, every final response is ACKed, a call ringing past the
ring timeout is CANCELled and its 487 ACKed.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ivr.phones import mask_text
from ivr.surveys.dialer import DialResult, Outcome
from ivr.transports.sip.dialog import Dialog
from ivr.transports.sip.endpoint import (
    T1,
    USER_AGENT,
    ClientTransaction,
    new_branch,
    new_call_id,
    new_tag,
)
from ivr.transports.sip.message import SipMessage, uri_hostport, uri_transport
from ivr.transports.sip.rtp import NoRtpPort
from ivr.transports.sip.sdp import LocalSdp, SdpError, choose_codec
from ivr.transports.sip.sdp import parse as parse_sdp
from ivr.transports.sip.session import CallSession

if TYPE_CHECKING:
    from ivr.transports.sip.phone import SipPhone

log = logging.getLogger(__name__)

# How long to wait for any answer at all before calling the target unreachable.
NO_RESPONSE_S = 8.0


def classify(status: int) -> Outcome:
    if status in (486, 600):
        return "busy"
    if status in (603, 403):
        return "rejected"
    if status in (404, 410, 484, 604):
        return "unreachable"
    if status in (408, 480, 487):
        return "no-answer"
    return "failed"


class SipDialer:
    """Implements the survey engine's dialer: dial a number, run the survey, report."""

    def __init__(self, phone: SipPhone, target_host: str | None = None) -> None:
        self.phone = phone
        cfg = phone.settings.sip
        self.target_host = (
            target_host
            or (cfg.outbound_trunk.hostport if cfg.outbound_trunk else None)
            or cfg.registrar
            or (f"{cfg.trunk_peers[0]}:5060" if cfg.trunk_peers else None)
        )

    def uri_for(self, number_or_uri: str) -> str:
        if number_or_uri.startswith(("sip:", "sips:")):
            return number_or_uri
        if not self.target_host:
            raise ValueError("no SIP trunk or registrar to dial through")
        return f"sip:{number_or_uri}@{self.target_host}"

    def dial(
        self,
        number_or_uri: str,
        *,
        flow: str = "survey",
        variables: Mapping[str, Any] | None = None,
        ring_timeout: float | None = None,
        caller_id: str | None = None,
    ) -> DialResult:
        """Call a citizen and run a flow (the survey) on the answered call."""
        phone = self.phone
        variables = dict(variables or {})
        me = caller_id or phone.settings.hotline

        def run_flow(session: CallSession, result: DialResult) -> None:
            app = phone.app
            first = app.calls.start(
                provider="sip",
                provider_call_id=session.call_id,
                from_number=me,
                to_number=number_or_uri,
                flow=flow,
                direction="outbound",
                variables=variables,
                line_number=str(variables.get("line_number") or phone.settings.hotline),
                node=phone.node,
            )
            last = session.run(first)
            result.vars = dict(last.vars)

        return self.place(
            number_or_uri, run_flow, flow=flow, ring_timeout=ring_timeout, caller_id=me
        )

    def place(
        self,
        number_or_uri: str,
        on_answer: Callable[[CallSession, DialResult], None],
        *,
        flow: str = "survey",
        ring_timeout: float | None = None,
        caller_id: str | None = None,
    ) -> DialResult:
        """INVITE, wait for the outcome, and hand an answered call to `on_answer`."""
        phone, ep = self.phone, self.phone.endpoint
        ring_timeout = ring_timeout or phone.settings.sip.ring_timeout_s
        uri = self.uri_for(number_or_uri)
        dest = uri_hostport(uri)
        start = time.monotonic()
        timeline: list[tuple[float, str]] = []

        def note(what: str) -> None:
            timeline.append((round(time.monotonic() - start, 3), what))

        try:
            port = phone.ports.acquire()
        except NoRtpPort as exc:
            log.error("not dialing %s: %s", mask_text(number_or_uri), exc)
            note(str(exc))
            return DialResult("failed", None, None, timeline=timeline)
        local_sdp = LocalSdp(phone.settings.sip.advertised_host)
        invite = self._invite(uri, caller_id or phone.settings.hotline, local_sdp.offer(port))
        call_id = invite.call_id
        log.info("dialing %s (call %s)", mask_text(number_or_uri), call_id)
        tx = ep.request(invite, dest, retransmit_until=NO_RESPONSE_S)
        note("invite sent")
        handed_over = False
        try:
            final = self._await_final(tx, invite, dest, ring_timeout, note)
            if final is None:
                return DialResult("unreachable", None, call_id, timeline=timeline)
            status = final.status or 0
            if status >= 300:
                self._ack_error(invite, final, dest)
                note(f"{status} acked")
                return DialResult(classify(status), status, call_id, timeline=timeline)
            dialog = Dialog.as_uac(invite, final, dest)
            ack, ack_dest = dialog.request(ep, "ACK", cseq=1)
            # Remembered before it is sent: a 200 retransmitted the moment our ACK lands
            # must find it, not the finished transaction's queue.
            ep.remember_ack(ack, ack_dest)
            ep.send(ack, ack_dest)
            note("200 acked")
            try:
                remote = parse_sdp(final.body)
                codec = choose_codec(remote)
            except SdpError as exc:
                log.warning("answered call %s has unusable SDP (%s); hanging up", call_id, exc)
                bye, bye_dest = dialog.request(ep, "BYE")
                ep.request(bye, bye_dest, retransmit_until=4 * T1)
                return DialResult("failed", status, call_id, timeline=timeline)
            session = CallSession(phone, dialog, remote, codec, port, flow)
            session.local_sdp = local_sdp
            phone.sessions[call_id] = session
            handed_over = True
            result = DialResult("answered", status, call_id, timeline=timeline)
            try:
                on_answer(session, result)
            finally:
                session.hang_up()  # unless the callee already did
                session.close()
            result.timeline += [(round(t, 3), w) for t, w in session.timeline]
            return result
        finally:
            ep.forget(tx)
            if not handed_over:
                phone.ports.release(port)

    def _invite(self, uri: str, me: str, sdp: bytes) -> SipMessage:
        ep, host = self.phone.endpoint, self.phone.settings.sip.advertised_host
        invite = SipMessage(method="INVITE", uri=uri)  # keeps its port (defect 7)
        transport = uri_transport(uri)
        invite.add("Via", ep.via(new_branch(), transport))
        invite.add("Max-Forwards", "70")
        invite.add("From", f"<sip:{me}@{ep.contact_host}>;tag={new_tag()}")
        invite.add("To", f"<{uri}>")
        invite.add("Call-ID", new_call_id(host))
        invite.add("CSeq", "1 INVITE")
        tcp = ";transport=tcp" if transport == "TCP" else ""
        invite.add("Contact", f"<sip:{me}@{ep.contact_host}{tcp}>")
        invite.add("User-Agent", USER_AGENT)
        invite.add("Content-Type", "application/sdp")
        invite.body = sdp
        return invite

    def _await_final(
        self,
        tx: ClientTransaction,
        invite: SipMessage,
        dest: tuple[str, int],
        ring_timeout: float,
        note: Any,
    ) -> SipMessage | None:
        start = time.monotonic()
        ringing_since: float | None = None
        cancel_sent = False
        while True:
            now = time.monotonic()
            if ringing_since is None and now - start > NO_RESPONSE_S:
                note("no response")
                return None
            if ringing_since is not None and not cancel_sent and now - ringing_since > ring_timeout:
                self._cancel(invite, dest)
                cancel_sent = True
                cancel_deadline = now + 32 * T1
                note("ring timeout: cancel sent")
            if cancel_sent and now > cancel_deadline:
                note("no 487 after cancel")
                return None
            try:
                resp = tx.responses.get(timeout=0.1)
            except queue.Empty:
                continue
            status = resp.status or 0
            if status < 200:
                if ringing_since is None:
                    ringing_since = time.monotonic()
                    note(f"{status} {resp.reason}")
                continue
            note(f"{status} {resp.reason}")
            return resp

    def _cancel(self, invite: SipMessage, dest: tuple[str, int]) -> None:
        ep = self.phone.endpoint
        cancel = SipMessage(method="CANCEL", uri=invite.uri)
        cancel.add("Via", invite.get("Via") or "")  # same branch as the INVITE (RFC 3261 9.1)
        cancel.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            cancel.add(name, invite.get(name) or "")
        cancel.add("CSeq", f"{invite.cseq[0]} CANCEL")
        tx = ep.request(cancel, dest, retransmit_until=16 * T1)
        tx.final.wait(4)
        ep.forget(tx)

    def _ack_error(self, invite: SipMessage, final: SipMessage, dest: tuple[str, int]) -> None:
        """ACK a non-2xx final response inside the INVITE transaction (RFC 3261 17.1.1.3)."""
        ack = SipMessage(method="ACK", uri=invite.uri)
        ack.add("Via", invite.get("Via") or "")
        ack.add("Max-Forwards", "70")
        ack.add("From", invite.get("From") or "")
        ack.add("To", final.get("To") or invite.get("To") or "")
        ack.add("Call-ID", invite.call_id)
        ack.add("CSeq", f"{invite.cseq[0]} ACK")
        self.phone.endpoint.send(ack, dest)
