"""A throwaway Kamailio 5.6 proxy/registrar on a loopback port (kamailio/proxy.cfg beside it)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .ports import LOOPBACK, free_udp_port
from .procs import ManagedProcess, ProcessResult
from .sipmsg import SipMessage, build_request

KAMAILIO = "kamailio"
CONFIG = Path(__file__).resolve().parent / "kamailio" / "proxy.cfg"
MODULE_DIRS = (
    Path("/usr/lib/x86_64-linux-gnu/kamailio/modules"),
    Path("/usr/lib/aarch64-linux-gnu/kamailio/modules"),
    Path("/usr/lib/kamailio/modules"),
)
DEFAULT_SERVICE_NUMBERS = ("12345", "12315", "12369", "12365", "12366", "12358")


def module_dir() -> Path:
    """Where Debian put Kamailio's modules."""
    for d in MODULE_DIRS:
        if (d / "tm.so").exists():
            return d
    raise FileNotFoundError("Kamailio modules not found (Debian package kamailio)")


def sip_probe(
    target: tuple[str, int],
    request: bytes,
    *,
    bind: tuple[str, int] = (LOOPBACK, 0),
    timeout: float = 1.0,
    until_final: bool = True,
) -> list[SipMessage]:
    """Send one UDP datagram, collect the SIP replies for up to `timeout` s.

    Stops at the first final (>= 200) response when `until_final`.
    """
    replies: list[SipMessage] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(bind)
        s.sendto(request, target)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(65535)
            except TimeoutError:
                break
            msg = SipMessage.parse(data)
            replies.append(msg)
            if until_final and (msg.status or 0) >= 200:
                break
    return replies


def options_ping(target: tuple[str, int], *, timeout: float = 1.0) -> int | None:
    """Status of the final answer to an OPTIONS sent to sip:host:port, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        local = s.getsockname()
    uri = f"sip:{target[0]}:{target[1]}"
    req = build_request("OPTIONS", uri, local=local)
    replies = sip_probe(target, req, bind=local, timeout=timeout)
    finals = [r.status for r in replies if (r.status or 0) >= 200]
    return finals[0] if finals else None


class Kamailio:
    """Kamailio in the foreground (-DD -E) with its own runtime dir; stop() kills the group.

    `auth_password=None` disables digest auth. Every user name registers with
    the same password. Calls to any of `service_numbers` reach the contact
    registered as `ivr_user` (the To header keeps the dialed number).
    """

    def __init__(
        self,
        *,
        workdir: Path,
        host: str = LOOPBACK,
        port: int | None = None,
        ivr_user: str = "12345",
        service_numbers: Sequence[str] = DEFAULT_SERVICE_NUMBERS,
        auth_password: str | None = "secret",
        realm: str = "sipkit",
        auth_invite: bool = False,
        add_diversion: bool = False,
        forward_to: str | None = None,
        strip_empty_supported: bool = True,
        config: Path = CONFIG,
    ) -> None:
        if shutil.which(KAMAILIO) is None:
            raise FileNotFoundError("kamailio not found (Debian package kamailio)")
        self.host = host
        self.port = port or free_udp_port(host)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Unix socket paths are limited to 108 bytes: keep the runtime dir short.
        self.rundir = Path(tempfile.mkdtemp(prefix="kam-", dir="/tmp"))
        self.rpc_socket = self.rundir / "rpc.sock"
        numbers = "|".join(sorted({ivr_user, *service_numbers}))
        defines = [
            f'RPC_SOCKET="{self.rpc_socket}"',
            f'IVR_USER="{ivr_user}"',
            f'SERVICE_RE="^({numbers})$"',
        ]
        if auth_password is not None:
            defines += ["WITH_AUTH", f'AUTH_REALM="{realm}"', f'AUTH_PASSWORD="{auth_password}"']
            if auth_invite:
                defines.append("WITH_AUTH_INVITE")
        if add_diversion:
            defines.append("WITH_DIVERSION")
        if forward_to:
            defines.append(f'FORWARD_TO="{forward_to}"')
        if strip_empty_supported:
            defines.append("STRIP_EMPTY_SUPPORTED")
        argv = [KAMAILIO, "-f", str(config), "-L", str(module_dir()), "-Y", str(self.rundir)]
        argv += ["-DD", "-E", "-l", f"udp:{host}:{self.port}", "-m", "32", "-M", "8"]
        argv += ["-w", str(self.rundir)]
        for d in defines:
            argv += ["-A", d]
        self.argv = argv
        self.proc: ManagedProcess | None = None
        self._result: ProcessResult | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def uri(self, user: str) -> str:
        """sip:user@host:port at this proxy."""
        return f"sip:{user}@{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Kamailio:
        """Start and wait until it answers OPTIONS with 200 (raises with its log otherwise)."""
        self.proc = ManagedProcess(
            self.argv, name="kamailio", logdir=self.workdir, forks_workers=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                log = self.log()
                self.stop()
                raise RuntimeError(f"kamailio exited at start:\n{log[-3000:]}")
            if options_ping(self.address, timeout=0.3) == 200:
                return self
        self.stop()
        raise TimeoutError(
            f"kamailio not answering OPTIONS on {self.address}:\n{self.log()[-3000:]}"
        )

    def log(self) -> str:
        """Kamailio's log so far (stderr; `sipkit:` lines trace each request)."""
        path = self.workdir / "kamailio.err"
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def rpc(self, method: str, *params: Any, timeout: float = 2.0) -> Any:
        """Call a JSON-RPC command over the jsonrpcs datagram socket; returns `result`."""
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        reply_path = self.rundir / f"rpc-reply-{time.monotonic_ns()}.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind(str(reply_path))
            try:
                s.settimeout(timeout)
                s.sendto(json.dumps(request).encode(), str(self.rpc_socket))
                data, _ = s.recvfrom(1 << 20)
            finally:
                with contextlib.suppress(OSError):
                    reply_path.unlink()
        reply = json.loads(data)
        if "error" in reply:
            raise RuntimeError(f"kamailio rpc {method}: {reply['error']}")
        return reply.get("result")

    def contacts(self, user: str) -> list[str]:
        """Contact URIs currently registered for `user` (empty if none)."""
        try:
            result = self.rpc("ul.lookup", "location", user)
        except RuntimeError:  # 404 "AOR not found"
            return []
        out: list[str] = []
        for item in (result or {}).get("Contacts", []):
            contact = item.get("Contact", item)
            if isinstance(contact, dict) and "Address" in contact:
                out.append(contact["Address"])
        return out

    def unregister(self, user: str) -> None:
        """Drop every registered contact of `user` (between tests sharing one proxy)."""
        with contextlib.suppress(RuntimeError):
            self.rpc("ul.rm", "location", user)

    def wait_registered(self, user: str, timeout: float = 10.0) -> list[str]:
        """Wait until `user` has a registered contact; returns the contacts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.contacts(user)
            if found:
                return found
            time.sleep(0.1)
        raise TimeoutError(f"{user} did not register at {self.hostport} in {timeout} s")

    def stop(self) -> ProcessResult | None:
        """Kill Kamailio (all its processes) and remove the runtime dir."""
        if self.proc is not None and self._result is None:
            self._result = self.proc.stop(grace=3.0)
        shutil.rmtree(self.rundir, ignore_errors=True)
        return self._result

    def __enter__(self) -> Kamailio:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
