"""Capture loopback traffic with dumpcap (Debian package tshark) to check the RTP a peer sent."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

from .pcap import RtpPacket, read_rtp_pcap
from .procs import ManagedProcess, wait_until

DUMPCAP = "dumpcap"


class UdpCapture:
    """dumpcap on `lo` for the given UDP ports, written as classic pcap to `path`.

    Needs root or CAP_NET_RAW (as SIPp's pcap play does). Use as a context
    manager or start()/stop(); `rtp(dst_port)` parses what was captured.
    """

    def __init__(self, path: Path, ports: Sequence[int], *, iface: str = "lo") -> None:
        if shutil.which(DUMPCAP) is None:
            raise FileNotFoundError("dumpcap not found (Debian package tshark)")
        self.path = Path(path)
        bpf = " or ".join(f"udp port {p}" for p in ports)
        self.argv = [DUMPCAP, "-q", "-P", "-i", iface, "-f", bpf, "-w", str(self.path)]
        self.proc: ManagedProcess | None = None

    def start(self, timeout: float = 5.0) -> UdpCapture:
        """Start and wait until dumpcap says it is capturing."""
        self.proc = ManagedProcess(self.argv, name="dumpcap", logdir=self.path.parent)
        proc = self.proc

        def ready() -> bool:
            return "Capturing on" in proc.stderr_path.read_text(errors="replace")

        if not wait_until(lambda: ready() or not proc.alive(), timeout) or not proc.alive():
            err = proc.stderr_path.read_text(errors="replace")
            proc.stop()
            raise RuntimeError(f"dumpcap did not start: {err[-1000:]}")
        return self

    def stop(self) -> Path:
        """Stop (SIGINT lets dumpcap flush the file) and return the pcap path."""
        if self.proc is not None:
            self.proc.stop(grace=3.0, sig=signal.SIGINT)
        return self.path

    def rtp(self, dst_port: int | None = None) -> list[RtpPacket]:
        """RTP packets captured (optionally only those sent to `dst_port`)."""
        if not self.path.exists():
            return []
        return read_rtp_pcap(self.path, dst_port=dst_port)

    def __enter__(self) -> UdpCapture:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
