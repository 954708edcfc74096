"""SIP over TCP (RFC 3261 18): the same port as UDP, messages framed by Content-Length.

Carriers send INVITEs too large for one UDP datagram over TCP, and RFC 3261
requires every element to support both. A connection is kept by its peer's
address: responses go back on the connection the request came in on, and the
requests of a dialog that started over TCP (ACK, BYE, re-INVITE) reuse it. The
IVR never closes a connection a peer keeps open (its calls' dialogs live on it);
a peer's CRLF CRLF keep-alive ping gets the CRLF pong (RFC 5626 4.4.1).

One thread accepts, one thread per connection reads (connections are few: a
trunk or an edge proxy keeps one or two open). Bad framing (no end of headers
within MAX_MESSAGE bytes, a bad Content-Length) is logged and the connection
closed; the listener goes on.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Addr = tuple[str, int]
MAX_MESSAGE = 65535
MAX_CONNECTIONS = 512
MAX_PER_ADDRESS = 32  # one source cannot take every connection (a trunk needs a few)
CONNECT_TIMEOUT_S = 5.0
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\S*)[ \t]*$", re.I | re.M)


class FramingError(ValueError):
    """The byte stream is not a sequence of SIP messages."""


def split_messages(buffer: bytearray) -> tuple[list[bytes], int]:
    """Whole messages at the start of `buffer` (consumed from it), and how many
    CRLF CRLF keep-alive pings came before them (each wants a CRLF pong)."""
    messages: list[bytes] = []
    pings = 0
    while True:
        if buffer.startswith(b"\r\n\r\n"):
            del buffer[:4]
            pings += 1
            continue
        if buffer.startswith(b"\r\n"):
            if b"\r\n\r\n".startswith(bytes(buffer)):
                break  # a pong, or the start of a ping: wait for what follows
            del buffer[:2]  # a CRLF pong before a message
            continue
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_MESSAGE:
                raise FramingError(f"no end of headers in {len(buffer)} bytes")
            break
        head = bytes(buffer[:end])
        m = _CONTENT_LENGTH.search(head)
        value = m.group(1) if m else b"0"  # required on TCP; taken as 0 when missing
        if not value.isdigit():
            raise FramingError(f"bad Content-Length {value[:20]!r}")
        total = end + 4 + int(value)
        if total > MAX_MESSAGE:
            raise FramingError(f"message of {total} bytes")
        if len(buffer) < total:
            break
        messages.append(bytes(buffer[:total]))
        del buffer[:total]
    return messages, pings


class TcpConnection:
    def __init__(self, sock: socket.socket, peer: Addr) -> None:
        self.sock, self.peer = sock, peer
        self.send_lock = threading.Lock()
        self.open = True

    def send(self, data: bytes) -> None:
        with self.send_lock:
            self.sock.sendall(data)

    def close(self) -> None:
        self.open = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class TcpTransport:
    """Listens on TCP host:port and hands each SIP message to `on_message(data, peer)`."""

    def __init__(self, host: str, port: int, on_message: Callable[[bytes, Addr], None]) -> None:
        self.host, self.on_message = host, on_message
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self.port = self._listener.getsockname()[1]
        self._listener.listen(64)
        self._listener.settimeout(0.25)
        self._conns: dict[Addr, TcpConnection] = {}
        self._lock = threading.Lock()
        self._running = False
        self._thread = threading.Thread(target=self._accept_loop, name="sip-tcp", daemon=True)

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self._listener.close()
        with self._lock:
            conns = list(self._conns.values())
            self._conns.clear()
        for conn in conns:
            conn.close()

    def connected(self, peer: Addr) -> bool:
        with self._lock:
            return peer in self._conns

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def send(self, data: bytes, peer: Addr) -> None:
        """Send on the connection to `peer`, opening one when there is none (OSError if
        that fails)."""
        with self._lock:
            conn = self._conns.get(peer)
        if conn is None:
            conn = self._connect(peer)
        try:
            conn.send(data)
        except OSError:
            self._drop(conn)
            raise

    def _connect(self, peer: Addr) -> TcpConnection:
        sock = socket.create_connection(peer, timeout=CONNECT_TIMEOUT_S)
        sock.settimeout(None)
        host, port = sock.getpeername()[:2]
        conn = self._adopt(sock, (host, port))
        if peer != conn.peer:  # a host name: find the connection by that too
            with self._lock:
                self._conns.setdefault(peer, conn)
        return conn

    def _adopt(self, sock: socket.socket, peer: Addr) -> TcpConnection:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        conn = TcpConnection(sock, peer)
        with self._lock:
            old = self._conns.get(peer)
            self._conns[peer] = conn
        if old is not None:
            old.close()
        threading.Thread(
            target=self._read_loop, args=(conn,), name=f"sip-tcp-{peer[1]}", daemon=True
        ).start()
        return conn

    def _drop(self, conn: TcpConnection) -> None:
        with self._lock:
            for key in [k for k, c in self._conns.items() if c is conn]:
                del self._conns[key]
        conn.close()

    def _accept_loop(self) -> None:
        while self._running:
            try:
                sock, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._running:
                    break
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    log.error("SIP TCP: out of file descriptors: %s", exc)
                    threading.Event().wait(0.5)
                continue
            with self._lock:
                total = len(self._conns)
                same = sum(1 for p in self._conns if p[0] == peer[0])
            if total >= MAX_CONNECTIONS or same >= MAX_PER_ADDRESS:
                log.warning("SIP TCP: too many connections (%d, %d from %s)", total, same, peer[0])
                sock.close()
                continue
            log.debug("SIP TCP connection from %s:%d", *peer)
            self._adopt(sock, (peer[0], peer[1]))

    def _read_loop(self, conn: TcpConnection) -> None:
        buffer = bytearray()
        try:
            while conn.open:
                try:
                    chunk = conn.sock.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                buffer.extend(chunk)
                try:
                    messages, pings = split_messages(buffer)
                except FramingError as exc:
                    log.warning("SIP TCP from %s:%d: %s; closing", conn.peer[0], conn.peer[1], exc)
                    break
                for _ in range(pings):
                    conn.send(b"\r\n")
                for data in messages:
                    try:
                        self.on_message(data, conn.peer)
                    except Exception:  # nothing a peer sends may stop the reader
                        log.exception("SIP message over TCP from %s:%d not handled", *conn.peer)
        except OSError as exc:
            log.debug("SIP TCP %s:%d: %s", conn.peer[0], conn.peer[1], exc)
        finally:
            self._drop(conn)
            log.debug("SIP TCP connection %s:%d closed", *conn.peer)
