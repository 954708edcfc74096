"""Dynamic loopback ports: ask the kernel for free ones, then release them for the child."""

from __future__ import annotations

import random
import socket

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


def free_sip_port(host: str = LOOPBACK) -> int:
    """A port free for both UDP and TCP (SIP peers often bind both)."""
    for _ in range(200):
        port = free_udp_port(host)
        if _tcp_free(host, port):
            return port
    raise RuntimeError("no port free for both UDP and TCP")


def free_port_block(count: int = 4, host: str = LOOPBACK, *, even: bool = True) -> int:
    """First port of `count` consecutive free UDP ports (RTP/RTCP pairs, SIPp -mp needs +2).

    Picked at random in 20000-59999 so parallel runs rarely collide; ports are
    released before returning, so bind them soon.
    """
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(20000, 60000 - count)
        if even:
            base &= ~1
        if all(_udp_free(host, base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no block of {count} free UDP ports on {host}")
