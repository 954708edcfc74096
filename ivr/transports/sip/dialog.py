"""A SIP dialog and the requests sent inside it.

pyVoIP 1.6.8 built BYE from the INVITE's Via with CSeq+1 and sent the ACK for a
2xx to the To-URI without the route set, which loops through a Record-Routing
proxy (defect 7). Here in-dialog requests get a fresh branch, the dialog's own
CSeq, the Route set, and go to the first route or the remote target. A dialog
that began over TCP sends its requests over TCP, on the connection it began on
while that is open (a caller behind a trunk or NAT cannot be reached otherwise).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ivr.lines import split_header_values
from ivr.transports.sip.endpoint import USER_AGENT, Addr, SipEndpoint, new_branch
from ivr.transports.sip.message import (
    SipMessage,
    addr_uri,
    param,
    uri_hostport,
    via_transport,
)


@dataclass
class Dialog:
    call_id: str
    local_uri: str
    local_tag: str
    remote_uri: str
    remote_tag: str
    remote_target: str
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = field(default_factory=lambda: random.randint(1, 10_000))
    fallback: Addr | None = None
    transport: str = "UDP"

    @classmethod
    def as_uas(cls, invite: SipMessage, local_tag: str, source: Addr) -> Dialog:
        contact = invite.get("Contact")
        return cls(
            call_id=invite.call_id,
            local_uri=addr_uri(invite.get("To") or ""),
            local_tag=local_tag,
            remote_uri=addr_uri(invite.get("From") or ""),
            remote_tag=param(invite.get("From") or "", "tag") or "",
            remote_target=addr_uri(contact) if contact else addr_uri(invite.get("From") or ""),
            route_set=split_header_values(invite.get_all("Record-Route")),
            fallback=source,
            transport=via_transport(invite.get("Via") or ""),
        )

    @classmethod
    def as_uac(cls, invite: SipMessage, ok: SipMessage, source: Addr) -> Dialog:
        contact = ok.get("Contact")
        return cls(
            call_id=invite.call_id,
            local_uri=addr_uri(invite.get("From") or ""),
            local_tag=param(invite.get("From") or "", "tag") or "",
            remote_uri=addr_uri(invite.get("To") or ""),
            remote_tag=param(ok.get("To") or "", "tag") or "",
            remote_target=addr_uri(contact) if contact else invite.uri or "",
            route_set=list(reversed(split_header_values(ok.get_all("Record-Route")))),
            local_cseq=invite.cseq[0],
            fallback=source,
            transport=via_transport(invite.get("Via") or ""),
        )

    def matches(self, msg: SipMessage) -> bool:
        """Whether an in-dialog request belongs here: Call-ID and both tags (RFC 3261 12.2.2).

        The Call-ID alone is no proof: anyone who saw it could end the call with a BYE.
        """
        return (
            msg.call_id == self.call_id
            and (param(msg.get("From") or "", "tag") or "") == self.remote_tag
            and (param(msg.get("To") or "", "tag") or "") == self.local_tag
        )

    def destination(self) -> Addr:
        if self.route_set:
            return uri_hostport(addr_uri(self.route_set[0]))
        host, port = uri_hostport(self.remote_target)
        return (host, port) if host else (self.fallback or ("127.0.0.1", 5060))

    def request(
        self,
        ep: SipEndpoint,
        method: str,
        *,
        body: bytes = b"",
        cseq: int | None = None,
        branch: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> tuple[SipMessage, Addr]:
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        msg = SipMessage(method=method, uri=self.remote_target)
        msg.add("Via", ep.via(branch or new_branch(), self.transport))
        for route in self.route_set:
            msg.add("Route", route)
        msg.add("Max-Forwards", "70")
        msg.add("From", f"<{self.local_uri}>;tag={self.local_tag}")
        msg.add(
            "To", f"<{self.remote_uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")
        )
        msg.add("Call-ID", self.call_id)
        msg.add("CSeq", f"{cseq} {method}")
        tcp = self.transport == "TCP"
        msg.add("Contact", f"<sip:ivr@{ep.contact_host}{';transport=tcp' if tcp else ''}>")
        msg.add("User-Agent", USER_AGENT)
        for n, v in headers or []:
            msg.add(n, v)
        if body:
            msg.add("Content-Type", "application/sdp")
        msg.body = body
        if tcp and self.fallback and ep.tcp is not None and ep.tcp.connected(self.fallback):
            return msg, self.fallback
        return msg, self.destination()
