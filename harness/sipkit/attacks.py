"""Hostile and malformed SIP traffic: sipvicious scans and raw UDP datagrams, time-bounded."""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .ports import LOOPBACK, free_udp_port
from .procs import run_process
from .sipmsg import SipMessage, build_request, pcmu_sdp

SVMAP = "svmap"  # Debian sipvicious 0.3.3 installs svmap, svwar, svcrack, svreport, svcrash
SVWAR = "svwar"
MAX_UDP_PAYLOAD = 65507  # IPv4: 65535 - 20 (IP) - 8 (UDP)


@dataclass(frozen=True)
class ScanResult:
    """A sipvicious run: exit code, whether we killed it, output and parsed table rows."""

    argv: tuple[str, ...]
    returncode: int
    timed_out: bool
    duration: float
    stdout: str
    stderr: str
    rows: tuple[tuple[str, ...], ...]  # the `| a | b |` table rows, header excluded


def _table_rows(text: str) -> tuple[tuple[str, ...], ...]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and line.rstrip().endswith("|"):
            cells = tuple(c.strip() for c in line.strip().strip("|").split("|"))
            rows.append(cells)
    return tuple(rows[1:]) if rows else ()


def _sipvicious(binary: str, args: list[str], workdir: Path, timeout: float) -> ScanResult:
    if shutil.which(binary) is None:
        raise FileNotFoundError(f"{binary} not found (Debian package sipvicious)")
    workdir.mkdir(parents=True, exist_ok=True)
    # sipvicious keeps session state under $HOME/.sipvicious: keep it in the workdir.
    env = {"HOME": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"}
    result = run_process(
        [binary, *args], name=binary, logdir=workdir, timeout=timeout, cwd=workdir, env=env
    )
    return ScanResult(
        argv=result.argv,
        returncode=result.returncode,
        timed_out=result.timed_out,
        duration=result.duration,
        stdout=result.stdout,
        stderr=result.stderr,
        rows=_table_rows(result.stdout),
    )


def svmap(
    host: str,
    port: int,
    *,
    workdir: Path,
    method: str = "OPTIONS",
    timeout: float = 20.0,
    bind_ip: str = LOOPBACK,
) -> ScanResult:
    """Scan host:port with svmap (fingerprints the User-Agent); killed after `timeout` s.

    A found device shows up in `rows` as (address:port, user agent, ...).
    """
    args = ["-p", str(port), "-m", method, "-b", bind_ip, "-x", bind_ip]
    args += ["-P", str(free_udp_port(bind_ip)), host]  # not 5060: the IVR may be there
    return _sipvicious(SVMAP, args, workdir, timeout)


def svwar(
    host: str,
    port: int,
    *,
    workdir: Path,
    extensions: str = "12300-12399",
    method: str = "REGISTER",
    timeout: float = 30.0,
    max_silence: int = 5,
    bind_ip: str = LOOPBACK,
) -> ScanResult:
    """Enumerate extensions with svwar (REGISTER, OPTIONS or INVITE); killed after `timeout` s.

    Rows are (extension, authentication) for extensions that answered differently.
    """
    args = ["-e", extensions, "-m", method, "-p", str(port), "--force"]
    args += ["--maximumtime", str(max_silence), "-b", bind_ip, "-x", bind_ip]
    args += ["-P", str(free_udp_port(bind_ip)), host]
    return _sipvicious(SVWAR, args, workdir, timeout)


# -- raw datagrams ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """What came back to one raw datagram within the timeout."""

    name: str
    sent: int  # bytes sent
    replies: tuple[SipMessage, ...]
    raw_replies: tuple[bytes, ...]
    send_error: str | None = None

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.replies if r.status is not None]

    @property
    def answered(self) -> bool:
        return bool(self.raw_replies)


def _invite(
    target: tuple[str, int], local: tuple[str, int], user: str, extra: list[str] | None = None
) -> bytes:
    uri = f"sip:{user}@{target[0]}:{target[1]}"
    sdp = pcmu_sdp(local[0], 40000)
    return build_request(
        "INVITE", uri, local=local, from_user="13800138000", extra_headers=extra, body=sdp
    )


def garbage(_t: tuple[str, int], _l: tuple[str, int], _u: str) -> bytes:
    """Random bytes (seeded, printable and not)."""
    rng = random.Random(12345)
    return bytes(rng.randrange(256) for _ in range(512))


def truncated_invite(t: tuple[str, int], lo: tuple[str, int], u: str) -> bytes:
    """An INVITE cut off in the middle of its headers."""
    full = _invite(t, lo, u)
    return full[: full.index(b"CSeq:") + 7]


def empty_header_invite(t: tuple[str, int], lo: tuple[str, int], u: str) -> bytes:
    """An INVITE with an empty `Supported:` header (as baresip sends)."""
    return _invite(t, lo, u, ["Supported:"])


def compact_invite(t: tuple[str, int], lo: tuple[str, int], u: str) -> bytes:
    """An INVITE using compact header names (i: f: t: v: m: l: c:)."""
    text = _invite(t, lo, u).decode()
    for long, short in (
        ("Call-ID:", "i:"),
        ("From:", "f:"),
        ("To:", "t:"),
        ("Via:", "v:"),
        ("Contact:", "m:"),
        ("Content-Length:", "l:"),
        ("Content-Type:", "c:"),
    ):
        text = re.sub(rf"(?m)^{re.escape(long)}", short, text)
    return text.encode()


def colon_value_invite(t: tuple[str, int], lo: tuple[str, int], u: str) -> bytes:
    """An INVITE whose header values contain ': ' (display name and Subject)."""
    text = _invite(t, lo, u, ["Subject: Re: complaint: noise at night"]).decode()
    text = text.replace("From: <", 'From: "Zhang: San" <', 1)
    return text.encode()


def no_space_to_invite(t: tuple[str, int], lo: tuple[str, int], u: str) -> bytes:
    """An INVITE with `To:<sip:...>` (no space after the colon; valid SIP)."""
    return _invite(t, lo, u).replace(b"\r\nTo: <", b"\r\nTo:<", 1)


def no_callid_invite(t: tuple[str, int], lo: tuple[str, int], u: str) -> bytes:
    """An INVITE without a Call-ID header."""
    return re.sub(rb"Call-ID: [^\r]*\r\n", b"", _invite(t, lo, u))


def oversized_invite(t: tuple[str, int], lo: tuple[str, int], u: str) -> bytes:
    """An INVITE padded with X-Padding headers to the largest UDP payload (65507 bytes)."""
    base = _invite(t, lo, u)
    head, body = base.split(b"\r\n\r\n", 1)
    room = MAX_UDP_PAYLOAD - len(base)
    pads: list[bytes] = []
    line_max = 998
    while room > 0:
        chunk = min(line_max, room)
        if chunk < len("X-Padding: a\r\n"):
            pads[-1] += b"a" * chunk
            break
        pads.append(b"X-Padding: " + b"a" * (chunk - len("X-Padding: \r\n")))
        room -= chunk
    data = head + b"\r\n" + b"\r\n".join(pads) + b"\r\n\r\n" + body
    assert len(data) == MAX_UDP_PAYLOAD, len(data)
    return data


MALFORMED: dict[str, Callable[[tuple[str, int], tuple[str, int], str], bytes]] = {
    "garbage": garbage,
    "truncated_invite": truncated_invite,
    "empty_header_invite": empty_header_invite,
    "compact_invite": compact_invite,
    "colon_value_invite": colon_value_invite,
    "no_space_to_invite": no_space_to_invite,
    "no_callid_invite": no_callid_invite,
    "oversized_invite": oversized_invite,
}


def _end_dialog(sock: socket.socket, target: tuple[str, int], ok: SipMessage) -> None:
    """ACK and BYE a call that a probe INVITE got answered, so it does not linger."""
    local = sock.getsockname()
    to, frm, call_id = ok.header("To"), ok.header("From"), ok.call_id
    if not (to and frm and call_id):
        return
    cseq = (ok.header("CSeq") or "1 INVITE").split()[0]
    contact = ok.header("Contact") or ""
    m = re.search(r"<([^>]+)>", contact)
    ruri = m.group(1) if m else contact.strip() or f"sip:{target[0]}:{target[1]}"
    for method, seq in (("ACK", cseq), ("BYE", str(int(cseq) + 1))):
        branch = f"z9hG4bKsk{random.getrandbits(40):x}"
        msg = (
            f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch={branch}\r\n"
            f"Max-Forwards: 70\r\nFrom: {frm}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(msg.encode(), target)


def send_raw(
    target: tuple[str, int],
    payload: bytes | Callable[[tuple[str, int]], bytes],
    *,
    name: str = "raw",
    local_ip: str = LOOPBACK,
    timeout: float = 1.0,
    end_answered_calls: bool = True,
    until_final: bool = True,
) -> ProbeResult:
    """Send one datagram from a fresh socket on `local_ip`, collect replies for `timeout` s.

    `payload` may be a function of the socket's (ip, port), for Via/Contact. A 2xx
    to an INVITE is ACKed and BYEd (when `end_answered_calls`). Stops at the first
    final response when `until_final`.
    """
    raw: list[bytes] = []
    replies: list[SipMessage] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((local_ip, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        if callable(payload):
            payload = payload(s.getsockname())
        try:
            sent = s.sendto(payload, target)
        except OSError as exc:
            return ProbeResult(name, 0, (), (), f"{type(exc).__name__}: {exc}")
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(65535)
            except (TimeoutError, ConnectionRefusedError):
                break
            raw.append(data)
            msg = SipMessage.parse(data)
            replies.append(msg)
            if (
                end_answered_calls
                and msg.status is not None
                and 200 <= msg.status < 300
                and msg.method == "INVITE"
            ):
                _end_dialog(s, target, msg)
            if until_final and (msg.status or 0) >= 200:
                break
    return ProbeResult(name, sent, tuple(replies), tuple(raw))


def probe_malformed(
    target: tuple[str, int],
    kind: str,
    *,
    user: str = "12345",
    local_ip: str = LOOPBACK,
    timeout: float = 1.0,
) -> ProbeResult:
    """Send one of `MALFORMED` (by name) to target from `local_ip`; replies within timeout."""
    build = MALFORMED[kind]
    return send_raw(
        target,
        lambda local: build(target, local, user),
        name=kind,
        local_ip=local_ip,
        timeout=timeout,
    )


def probe_all(
    target: tuple[str, int], *, user: str = "12345", local_ip: str = LOOPBACK, timeout: float = 1.0
) -> dict[str, ProbeResult]:
    """Every malformed datagram in turn; {kind: result}."""
    return {
        kind: probe_malformed(target, kind, user=user, local_ip=local_ip, timeout=timeout)
        for kind in MALFORMED
    }


def unknown_peer_ip(n: int | None = None) -> str:
    """A loopback address other than 127.0.0.1 (all of 127/8 is local on Linux)."""
    return f"127.0.0.{n if n is not None else 2 + os.getpid() % 200}"
