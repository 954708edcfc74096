"""The SIP phone: answers 12345 and the merged legacy numbers, places callbacks.

Trunk mode accepts INVITEs only from configured peers (403 to others) and never
registers (pyVoIP 1.6.8 could not start without a registrar, defect 1).
Register mode keeps a registration with digest auth, refreshes it and
re-registers after failures. A CANCEL before answer gets 200 + 487 and the call
is never answered (pyVoIP answered cancelled calls, defect 2). OPTIONS gets 200.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr.calls.service import StepResult
from ivr.flow import Flow, Say
from ivr.intake.live import warm_up
from ivr.phones import mask_number
from ivr.runtime.presence import hold, node_presence
from ivr.transports.sip.auth import authorization
from ivr.transports.sip.dialog import Dialog
from ivr.transports.sip.dtmf import DtmfInfoError, info_digit
from ivr.transports.sip.endpoint import (
    ALLOW,
    T1,
    USER_AGENT,
    Addr,
    SipEndpoint,
    new_branch,
    new_call_id,
    new_tag,
)
from ivr.transports.sip.media import Recognizer
from ivr.transports.sip.message import SipMessage, addr_uri, param, uri_user
from ivr.transports.sip.recognizer import AsrPool
from ivr.transports.sip.reinvite import answer_reinvite, sdp_refusal
from ivr.transports.sip.rtp import NoRtpPort, PortPool
from ivr.transports.sip.sdp import PCMA, PCMU, LocalSdp, MediaOffer, SdpError
from ivr.transports.sip.sdp import parse as parse_sdp
from ivr.transports.sip.session import CallSession

if TYPE_CHECKING:
    from ivr.app import Hotline
    from ivr.config import SipConfig

log = logging.getLogger(__name__)

PromptAudio = Callable[[Flow, Say, Mapping[str, Any]], bytes]


class Ringing:
    """An INVITE we have not answered yet; CANCEL can still stop it."""

    def __init__(self, invite: SipMessage, source: Addr) -> None:
        self.invite, self.source = invite, source
        self.tag = new_tag()
        self.cancelled = threading.Event()
        self.lock = threading.Lock()
        self.answered = False
        self.bye = threading.Event()  # a BYE came after our 200 but before the session


class Acked:
    """The ACK for our 200: set once it arrives; carries the SDP answer of a late offer."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.body = b""

    def arrived(self, ack: SipMessage) -> None:
        self.body = ack.body
        self.event.set()


class SipPhone:
    def __init__(
        self,
        app: Hotline,
        *,
        prompt_audio: PromptAudio | None = None,
        asr: AsrPool | None = None,
        sip: SipConfig | None = None,
    ) -> None:
        self.app = app
        # `sip`: this phone's own SIP settings (the separate dialer's port, see service.py).
        self.settings = (
            app.settings if sip is None else app.settings.model_copy(update={"sip": sip})
        )
        cfg = self.settings.sip
        self.endpoint = SipEndpoint(
            cfg.bind_host, cfg.port, cfg.advertised_host, self.on_request, tcp=cfg.tcp
        )
        self.ports = PortPool(cfg.bind_host, cfg.rtp_port_min, cfg.rtp_port_max)
        self._prompt_audio = prompt_audio
        self.asr = asr
        self.ringing: dict[str, Ringing] = {}
        self.sessions: dict[str, CallSession] = {}
        self.finished: list[CallSession] = []
        self._lock = threading.Lock()
        self.registered = threading.Event()
        self.registrations = 0
        self._stop = threading.Event()
        self._reg_thread: threading.Thread | None = None
        # (source ip, status) of the latest refused INVITEs; bounded, a scanner sends many.
        self.rejected: deque[tuple[str, int]] = deque(maxlen=256)
        self._acks: dict[str, Acked] = {}
        self.presence = node_presence(app.db, self.node, self.settings.storage_path)

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def node(self) -> str:
        """This SIP node, as stored on its calls: the configured address and port (one
        process per address and port; the same again after a restart)."""
        cfg = self.settings.sip
        return f"{cfg.advertised_host}:{cfg.port}"

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        # Held while this process may hold calls: the periodic open-call check closes
        # the calls of a node nobody holds (ivr.runtime.open_calls).
        hold(self.presence)
        self.endpoint.start()
        log.info(
            "SIP phone on %s:%d (%s mode)",
            self.settings.sip.bind_host,
            self.port,
            self.settings.sip.mode,
        )
        if self.settings.sip.mode == "register":
            self._reg_thread = threading.Thread(
                target=self._register_loop, name="sip-register", daemon=True
            )
            self._reg_thread.start()
        # The statement analysis loads its data on first use (seconds); a caller's first
        # statement is checked for emergencies while it is spoken, so load it now.
        threading.Thread(
            target=warm_up, args=(self.settings,), name="intake-warm-up", daemon=True
        ).start()

    def stop(self) -> None:
        self._stop.set()
        for session in list(self.sessions.values()):
            session.hang_up()
            session.close()
        if self.settings.sip.mode == "register" and self.registered.is_set():
            self._register(expires=0)
        self.endpoint.stop()
        self.presence.release()
        if self.asr is not None:
            self.asr.close()

    @property
    def active_calls(self) -> int:
        return len(self.sessions) + len(self.ringing)

    def release(self, session: CallSession) -> None:
        with self._lock:
            self.sessions.pop(session.call_id, None)
            self.finished.append(session)
            del self.finished[:-200]
        self.ports.release(session.rtp_port)

    # -- audio ---------------------------------------------------------------
    def prompt_audio(self, flow: Flow, say: Say, variables: Mapping[str, Any]) -> bytes:
        if self._prompt_audio is None:
            return b"\x00" * 1600  # 0.1 s: no prompt library configured
        try:
            return self._prompt_audio(flow, say, variables)
        except Exception:
            log.exception("prompt %s could not be rendered; playing silence", say.prompt)
            return b"\x00" * 1600

    def file_audio(self, url: str) -> bytes:
        from ivr.transports.sip.audiofile import read_pcm8k

        try:
            return read_pcm8k(Path(url))
        except Exception:
            log.exception("audio file %s could not be played", url)
            return b""

    @property
    def asr_enabled(self) -> bool:
        return self.asr is not None

    def new_recognizer(self) -> Recognizer | None:
        if self.asr is None:
            return None
        try:
            return self.asr.recognizer()
        except Exception:
            log.exception("no recognizer for this call; its recording waits for transcription")
            return None

    # -- requests ------------------------------------------------------------
    def on_request(self, msg: SipMessage, addr: Addr) -> None:
        method = msg.method or ""
        ep = self.endpoint
        if method == "OPTIONS":
            ep.respond(
                msg,
                addr,
                200,
                "OK",
                to_tag=new_tag(),
                headers=[("Allow", ALLOW), ("Accept", "application/sdp")],
            )
        elif method == "INVITE":
            if param(msg.get("To") or "", "tag"):
                self._reinvite(msg, addr)
            else:
                self._invite(msg, addr)
        elif method == "ACK":
            pass  # the 200 retransmitter watches for it (see _answer)
        elif method == "CANCEL":
            self._cancel(msg, addr)
        elif method == "BYE":
            self._bye(msg, addr)
        elif method == "INFO":
            self._info(msg, addr)
        elif method == "NOTIFY":
            known = self._session_for(msg, addr) is not None
            ep.respond(
                msg,
                addr,
                200 if known else 481,
                "OK" if known else "Call/Transaction Does Not Exist",
            )
        else:
            ep.respond(msg, addr, 405, "Method Not Allowed", headers=[("Allow", ALLOW)])
        if method == "ACK":
            with self._lock:
                acked = self._acks.get(msg.call_id)
            if acked is not None:
                acked.arrived(msg)

    def _refuse(
        self,
        msg: SipMessage,
        addr: Addr,
        status: int,
        reason: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.rejected.append((addr[0], status))
        self.endpoint.peer_log.warning(
            addr[0], f"refused {status}", "INVITE from %s:%d refused: %d %s", *addr, status, reason
        )
        self.endpoint.respond(msg, addr, status, reason, to_tag=new_tag(), headers=headers)

    def _session_for(self, msg: SipMessage, addr: Addr) -> CallSession | None:
        """The call an in-dialog request belongs to: Call-ID and both tags must match."""
        with self._lock:
            session = self.sessions.get(msg.call_id)
        if session is not None and not session.dialog.matches(msg):
            self.endpoint.peer_log.warning(
                addr[0],
                "dialog mismatch",
                "%s from %s:%d names call %s but not its tags: 481",
                msg.method,
                *addr,
                msg.call_id,
            )
            return None
        return session

    def _invite(self, msg: SipMessage, addr: Addr) -> None:
        cfg = self.settings.sip
        allowed = self._allowed_peers()
        if allowed is not None and addr[0] not in allowed:
            self._refuse(msg, addr, 403, "Forbidden")
            return
        if self.active_calls >= cfg.max_calls:
            # This node is full, not the hotline: 503 lets the edge proxy (or the carrier)
            # try another node now and this one again after Retry-After (RFC 3261 21.5.4).
            retry = [("Retry-After", str(cfg.full_retry_after_s))]
            self._refuse(msg, addr, 503, "Service Unavailable", retry)
            return
        if msg.body.strip():  # else a late offer: ours goes in the 200, theirs in the ACK
            try:
                parse_sdp(msg.body)
            except SdpError as exc:
                status, reason, headers = sdp_refusal(exc)
                self._refuse(msg, addr, status, f"{reason} ({exc})", headers)
                return
        ringing = Ringing(msg, addr)
        with self._lock:
            self.ringing[msg.call_id] = ringing
        self.endpoint.respond(msg, addr, 100, "Trying")
        self.endpoint.respond(
            msg,
            addr,
            180,
            "Ringing",
            to_tag=ringing.tag,
            headers=[("Contact", self.endpoint.contact(msg))],
        )
        threading.Thread(
            target=self._inbound, args=(ringing,), daemon=True, name=f"sip-call-{msg.call_id[:8]}"
        ).start()

    def _allowed_peers(self) -> set[str] | None:
        cfg = self.settings.sip
        if cfg.mode == "trunk":
            return set(cfg.trunk_peers)
        if cfg.trunk_peers:
            return set(cfg.trunk_peers)
        host = (cfg.registrar or "").split(":")[0]
        return {host} if host else None

    def _cancel(self, msg: SipMessage, addr: Addr) -> None:
        with self._lock:
            ringing = self.ringing.get(msg.call_id)
        if ringing is None or ringing.invite.branch != msg.branch:
            self.endpoint.respond(msg, addr, 481, "Call/Transaction Does Not Exist")
            return
        self.endpoint.respond(msg, addr, 200, "OK")
        with ringing.lock:
            if ringing.answered:
                return  # too late: the 200 crossed the CANCEL; the caller will BYE
            ringing.cancelled.set()
        self.endpoint.respond(
            ringing.invite, ringing.source, 487, "Request Terminated", to_tag=ringing.tag
        )
        log.info("call %s cancelled before answer", msg.call_id)

    def _bye(self, msg: SipMessage, addr: Addr) -> None:
        with self._lock:
            session = self.sessions.get(msg.call_id)
            ringing = self.ringing.get(msg.call_id)
        if (
            session is None
            and ringing is not None
            and ringing.answered
            and Dialog.as_uas(ringing.invite, ringing.tag, ringing.source).matches(msg)
        ):
            self.endpoint.respond(msg, addr, 200, "OK")  # answered, session not yet made
            ringing.bye.set()
            return
        session = self._session_for(msg, addr)
        if session is None:
            self.endpoint.respond(msg, addr, 481, "Call/Transaction Does Not Exist")
            return
        self.endpoint.respond(msg, addr, 200, "OK")
        session.note("bye received")
        session.caller_hung_up()

    def _info(self, msg: SipMessage, addr: Addr) -> None:
        """A key sent as SIP INFO goes where RFC 2833 keys go; other INFOs get 200."""
        session = self._session_for(msg, addr)
        if session is None:
            self.endpoint.respond(msg, addr, 481, "Call/Transaction Does Not Exist")
            return
        try:
            key = info_digit(msg.get("Content-Type") or "", msg.body)
        except DtmfInfoError as exc:
            log.warning("INFO in call %s refused: %s", msg.call_id, exc)
            self.endpoint.respond(msg, addr, 400, "Bad Request")
            return
        self.endpoint.respond(msg, addr, 200, "OK")
        if key is not None:
            session.note(f"INFO key {key}")
            session.media.on_digit(key)

    def _reinvite(self, msg: SipMessage, addr: Addr) -> None:
        session = self._session_for(msg, addr)
        if session is None:
            self.endpoint.respond(msg, addr, 481, "Call/Transaction Does Not Exist")
            return
        answer_reinvite(self, session, msg, addr)

    # -- an inbound call -------------------------------------------------------
    def _inbound(self, ringing: Ringing) -> None:
        invite, call_id = ringing.invite, ringing.invite.call_id
        port: int | None = None
        session: CallSession | None = None
        try:
            if ringing.cancelled.wait(self.settings.sip.answer_delay_ms / 1000):
                return
            try:
                port = self.ports.acquire()
            except NoRtpPort as exc:
                log.error("call %s refused with 503: %s", call_id, exc)
                self._fail_ringing(ringing, 503, "Service Unavailable", [("Retry-After", "5")])
                return
            local_sdp = LocalSdp(self.settings.sip.advertised_host)
            late = not invite.body.strip()
            if late:
                body, codec, offer = local_sdp.offer(port), PCMU, None
            else:
                offer = parse_sdp(invite.body)
                body, codec = local_sdp.answer(offer, port)
            with ringing.lock:
                if ringing.cancelled.is_set():
                    self.ports.release(port)
                    return
                ringing.answered = True
            dialog = Dialog.as_uas(invite, ringing.tag, ringing.source)
            if offer is None:
                # The session needs the caller's answer, in the ACK: a BYE before then
                # is noted on `ringing` (see _bye).
                acked = self._answer(ringing, body)
                offer, codec = self._late_answer(dialog, acked, port)
                if offer is None:
                    return
            session = CallSession(self, dialog, offer, codec, port, "inbound")
            session.local_sdp = local_sdp
            with self._lock:  # before the 200, so that a quick BYE finds the session
                self.sessions[call_id] = session
                self.ringing.pop(call_id, None)
            if late:
                if ringing.bye.is_set():
                    session.caller_hung_up()
            else:
                self._answer(ringing, body)
            session.note("answered" + (" (late offer)" if late else ""))
            step = self._start_flow(invite, call_id)
            session.run(step)
        except Exception:
            log.exception("inbound call %s failed", call_id)
            self._fail_ringing(ringing, 500, "Server Internal Error")
            if session is None and port is not None:
                self.ports.release(port)  # (a session releases its port when it closes)
        finally:
            with self._lock:
                self.ringing.pop(call_id, None)

    def _fail_ringing(
        self,
        ringing: Ringing,
        status: int,
        reason: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """A final error for an INVITE not answered yet (none once answered or cancelled)."""
        with ringing.lock:
            if ringing.answered or ringing.cancelled.is_set():
                return
            ringing.cancelled.set()  # a CANCEL now finds nothing left to stop
        self.endpoint.respond(
            ringing.invite, ringing.source, status, reason, to_tag=ringing.tag, headers=headers
        )

    def _late_answer(
        self, dialog: Dialog, acked: Acked, port: int
    ) -> tuple[MediaOffer | None, int]:
        """The caller's SDP answer from the ACK of our 200 (it sent an INVITE without SDP)."""
        call_id = dialog.call_id
        try:
            if not acked.event.wait(64 * T1):
                raise SdpError("no ACK for our 200 OK")
            theirs = parse_sdp(acked.body)
            codec = next((c for c in theirs.codecs if c in (PCMU, PCMA)), None)
            if codec is None:
                raise SdpError("the ACK has no PCMU or PCMA answer")
            return theirs, codec
        except SdpError as exc:
            log.warning("late-offer call %s dropped: %s", call_id, exc)
            bye, dest = dialog.request(self.endpoint, "BYE")
            tx = self.endpoint.request(bye, dest, retransmit_until=8 * T1)
            tx.final.wait(4)
            self.endpoint.forget(tx)
            self.ports.release(port)
            return None, PCMU

    def _answer(self, ringing: Ringing, sdp: bytes) -> Acked:
        return self.answer_until_acked(ringing.invite, ringing.source, ringing.tag, sdp)

    def answer_until_acked(self, invite: SipMessage, source: Addr, tag: str, sdp: bytes) -> Acked:
        """200 OK to an INVITE (or re-INVITE), re-sent until its ACK comes (RFC 3261 13.3.1.4)."""
        acked = Acked()
        with self._lock:
            self._acks[invite.call_id] = acked
        headers = [("Contact", self.endpoint.contact(invite)), ("Allow", ALLOW)]

        def send_ok() -> None:
            self.endpoint.respond(invite, source, 200, "OK", to_tag=tag, body=sdp, headers=headers)

        def retransmit() -> None:
            # RFC 3261 13.3.1.4: T1 doubling up to T2, until the ACK or 64*T1 (timer H).
            interval, give_up = T1, time.monotonic() + 64 * T1
            while not acked.event.wait(min(interval, max(0.0, give_up - time.monotonic()))):
                if time.monotonic() >= give_up or self._stop.is_set():
                    break
                send_ok()
                interval = min(interval * 2, 4.0)
            with self._lock:
                if self._acks.get(invite.call_id) is acked:
                    del self._acks[invite.call_id]
                session = self.sessions.get(invite.call_id)
            if not acked.event.is_set() and session is not None:
                session.abort("no ACK for our 200 OK")

        send_ok()
        threading.Thread(target=retransmit, daemon=True, name="sip-200-retx").start()
        return acked

    def _start_flow(self, invite: SipMessage, call_id: str) -> StepResult:
        pai = invite.get("P-Asserted-Identity")
        caller = uri_user(addr_uri(pai or invite.get("From") or ""))
        ruri_user = uri_user(invite.uri or "")
        to_user = uri_user(addr_uri(invite.get("To") or ""))
        # A registrar rewrites the Request-URI to our contact (its user is our account):
        # then the To header still names the number the caller dialed.
        order = (
            (to_user, ruri_user)
            if ruri_user == self.settings.sip.username
            else (ruri_user, to_user)
        )
        dialed = next((u for u in order if self.settings.line(u)), order[0])
        log.info("inbound call %s from %s to %s", call_id, mask_number(caller), dialed)
        return self.app.calls.start(
            provider="sip",
            provider_call_id=call_id,
            from_number=caller,
            to_number=dialed,
            diversion=invite.get_all("Diversion") or None,
            history_info=invite.get_all("History-Info") or None,
            node=self.node,
        )

    # -- registration ----------------------------------------------------------
    def _register_loop(self) -> None:
        backoff = 2.0
        while not self._stop.is_set():
            expires = self._register(self.settings.sip.register_expires)
            if expires:
                backoff = 2.0
                self._stop.wait(max(10.0, expires * 0.8))
            else:
                self.registered.clear()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 60.0)

    def _register(self, expires: int) -> int:
        """One REGISTER (answering a digest challenge); the granted expiry, 0 on failure."""
        import os

        cfg = self.settings.sip
        assert cfg.registrar and cfg.username
        host, _, port_s = cfg.registrar.partition(":")
        dest = (host, int(port_s or 5060))
        uri = f"sip:{cfg.registrar}"
        aor = f"sip:{cfg.username}@{cfg.registrar}"
        call_id = getattr(self, "_reg_call_id", None) or new_call_id(cfg.advertised_host)
        self._reg_call_id = call_id
        tag = getattr(self, "_reg_tag", None) or new_tag()
        self._reg_tag = tag
        password = os.environ.get(cfg.password_env, "")
        auth: tuple[str, str] | None = None
        for _ in range(2):
            self._reg_cseq = getattr(self, "_reg_cseq", 0) + 1
            msg = SipMessage(method="REGISTER", uri=uri)
            msg.add("Via", self.endpoint.via(new_branch()))
            msg.add("Max-Forwards", "70")
            msg.add("From", f"<{aor}>;tag={tag}")
            msg.add("To", f"<{aor}>")
            msg.add("Call-ID", call_id)
            msg.add("CSeq", f"{self._reg_cseq} REGISTER")
            msg.add("Contact", f"<sip:{cfg.username}@{self.endpoint.contact_host}>")
            msg.add("Expires", str(expires))
            msg.add("User-Agent", USER_AGENT)
            if auth:
                msg.add(*auth)
            tx = self.endpoint.request(msg, dest, retransmit_until=16 * T1)
            resp = self._final(tx, 10)
            self.endpoint.forget(tx)
            status = resp.status if resp else None
            if status in (401, 407) and resp is not None and auth is None:
                name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
                header = "Authorization" if status == 401 else "Proxy-Authorization"
                challenge = resp.get(name) or ""
                try:
                    auth = (
                        header,
                        authorization(challenge, "REGISTER", uri, cfg.username, password),
                    )
                except ValueError as exc:
                    log.error("registration to %s: %s", cfg.registrar, exc)
                    return 0
                continue
            if status is not None and 200 <= status < 300:
                if expires == 0:
                    self.registered.clear()
                    return 0
                granted = int(
                    param(resp.get("Contact") or "", "expires") or (resp.get("Expires") or expires)
                )  # type: ignore[union-attr]
                self.registrations += 1
                self.registered.set()
                log.info("registered %s at %s for %ds", cfg.username, cfg.registrar, granted)
                return granted
            log.warning(
                "registration to %s failed: %s",
                cfg.registrar,
                f"{status} {resp.reason}" if resp else "no answer",
            )
            return 0
        log.warning("registration to %s: credentials refused", cfg.registrar)
        return 0

    @staticmethod
    def _final(tx: Any, timeout: float) -> SipMessage | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                resp: SipMessage = tx.responses.get(timeout=max(0.01, end - time.monotonic()))
            except Exception:
                return None
            if (resp.status or 0) >= 200:
                return resp
        return None
