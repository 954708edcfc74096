"""Dynamic loopback ports: ask the kernel for free ones, then release them for the child."""

from __future__ import annotations

import os
import random
import socket
import threading

LOOPBACK = "127.0.0.1"


def _udp_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _tcp_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_udp_port(host: str = LOOPBACK) -> int:
    """A UDP port that is free on `host` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_tcp_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_sip_port(host: str = LOOPBACK, *, tls_next: bool = False) -> int:
    """A port free for both UDP and TCP (SIP peers often bind both).

    `tls_next`: the next port is free for TCP too (baresip listens for TLS there). Such
    a pair comes from below the ephemeral range, where no connection's local port lands
    between this check and the peer's bind."""
    for _ in range(200):
        port = free_port_block(2, host, even=False) if tls_next else free_udp_port(host)
        if _tcp_free(host, port) and (not tls_next or _tcp_free(host, port + 1)):
            return port
    raise RuntimeError("no port free for both UDP and TCP")


_cursor: dict[int, int] = {}  # next block start, by the first port of the range
_cursor_lock = threading.Lock()


def _ephemeral_low() -> int:
    """Where the kernel's ephemeral ports start (the ports `free_udp_port` gets)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _block_range(count: int) -> tuple[int, int]:
    """Ports to pick blocks from: below the ephemeral range (so no peer's kernel-picked
    port lands in a block), split between pytest-xdist workers (gw0, gw1, ...)."""
    low, high = 10000, max(12000, _ephemeral_low())
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and worker[2:].isdigit() and workers > 1:
        share = (high - low) // workers
        if share > 4 * count:
            low += share * int(worker[2:])
            high = low + share
    return low, high - count


def free_port_block(count: int = 4, host: str = LOOPBACK, *, even: bool = True) -> int:
    """First port of `count` consecutive free UDP ports (RTP/RTCP pairs, SIPp -mp needs +2).

    Picked at random below the kernel's ephemeral range, in a part of it of this
    pytest-xdist worker's own, so parallel tests rarely collide; ports are released
    before returning, so bind them soon.
    """
    low, high = _block_range(count)
    with _cursor_lock:
        # Blocks follow one another through the range (from a random start), so a
        # process never hands out a block overlapping one it gave out recently.
        for _ in range(500):
            base = _cursor.get(low, random.randrange(low, high))
            if base + count > high:
                base = low
            if even:
                base &= ~1
            _cursor[low] = base + count + (count & 1)
            if all(_udp_free(host, base + i) for i in range(count)):
                return base
    raise RuntimeError(f"no block of {count} free UDP ports on {host}")
