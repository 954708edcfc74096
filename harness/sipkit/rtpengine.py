"""rtpengine (Debian package rtpengine-daemon) in userspace on loopback, and an SDES-SRTP
endpoint (pylibsrtp) to talk to it as a caller that encrypts its media."""

from __future__ import annotations

import base64
import os
import random
import re
import shutil
import socket
import struct
from pathlib import Path

from .ports import free_port_block, free_udp_port
from .procs import ManagedProcess, ProcessResult, wait_until

RTPENGINE = "rtpengine"
SUITE = "AES_CM_128_HMAC_SHA1_80"


class RtpEngine:
    """rtpengine in the foreground without its kernel module (`--table=-1`): media
    ports from a private block on `host`, the ng control protocol on UDP `ng_port`."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1", ports: int = 40) -> None:
        if shutil.which(RTPENGINE) is None:
            raise FileNotFoundError("rtpengine not found (Debian package rtpengine-daemon)")
        self.workdir, self.host = workdir, host
        self.ng_port = free_udp_port(host)
        low = free_port_block(ports, host)
        self.argv = [
            RTPENGINE, "--foreground", "--config-file=none", "--table=-1",
            f"--interface={host}", f"--listen-ng={host}:{self.ng_port}",
            f"--port-min={low}", f"--port-max={low + ports - 1}",
            "--log-stderr", "--log-level=6", "--no-log-timestamps",
        ]  # fmt: skip
        self.proc: ManagedProcess | None = None

    @property
    def ng_socket(self) -> str:
        """The address as Kamailio's rtpengine module names it (`rtpengine_sock`)."""
        return f"udp:{self.host}:{self.ng_port}"

    def ping(self, timeout: float = 0.3) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(b"sipkit d7:command4:pinge", (self.host, self.ng_port))
            try:
                return b"pong" in s.recv(2048)
            except OSError:
                return False

    def start(self, timeout: float = 10.0) -> RtpEngine:
        """Start and wait until its control port answers a ping."""
        self.proc = ManagedProcess(self.argv, name="rtpengine", logdir=self.workdir)
        proc = self.proc
        if not wait_until(lambda: not proc.alive() or self.ping(), timeout) or not proc.alive():
            proc.stop()
            raise RuntimeError(f"rtpengine did not start:\n{self.log()[-3000:]}")
        return self

    def log(self) -> str:
        return (self.workdir / "rtpengine.err").read_text(errors="replace")

    def stop(self) -> ProcessResult | None:
        return self.proc.stop() if self.proc is not None else None

    def __enter__(self) -> RtpEngine:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def savp_sdp(host: str, port: int, key: bytes) -> str:
    """An SRTP offer (RTP/SAVP, SDES) for PCMU + telephone-event at host:port."""
    inline = base64.b64encode(key).decode()
    return (
        "v=0\r\n"
        f"o=- {random.randrange(1, 1 << 30)} 1 IN IP4 {host}\r\n"
        "s=sipkit\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/SAVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\n"
        f"a=crypto:1 {SUITE} inline:{inline}\r\n"
        "a=sendrecv\r\n"
    )


def sdp_crypto_key(sdp: str) -> bytes:
    """The master key and salt of the answer's a=crypto line for our suite."""
    m = re.search(rf"^a=crypto:\d+ {SUITE} inline:([A-Za-z0-9+/=]+)", sdp, re.M)
    if m is None:
        raise ValueError(f"no {SUITE} crypto line in:\n{sdp}")
    return base64.b64decode(m.group(1))


class SrtpEndpoint:
    """Protects what we send with our key; unprotects what comes with the peer's key
    (raises pylibsrtp.Error when a packet does not authenticate)."""

    def __init__(self) -> None:
        self.key = os.urandom(30)  # 128-bit master key + 112-bit salt
        self._tx = self._rx = None
        self.seq, self.ssrc = random.randrange(1 << 16), random.randrange(1 << 32)

    def answered(self, peer_key: bytes) -> None:
        import pylibsrtp

        def session(key: bytes, ssrc_type: int) -> pylibsrtp.Session:
            policy = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type)
            return pylibsrtp.Session(policy=policy)

        self._tx = session(self.key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._rx = session(peer_key, pylibsrtp.Policy.SSRC_ANY_INBOUND)

    def protect(self, payload: bytes, pt: int = 0) -> bytes:
        assert self._tx is not None, "no answer yet"
        self.seq = (self.seq + 1) & 0xFFFF
        header = struct.pack("!BBHII", 0x80, pt, self.seq, self.seq * 160, self.ssrc)
        return self._tx.protect(header + payload)

    def unprotect(self, packet: bytes) -> tuple[int, bytes]:
        """(payload type, payload) of an SRTP packet."""
        assert self._rx is not None, "no answer yet"
        rtp = self._rx.unprotect(packet)
        return rtp[1] & 0x7F, rtp[12 + 4 * (rtp[0] & 0x0F) :]
