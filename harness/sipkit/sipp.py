"""Run SIPp 3.6.1 (Debian package sip-tester) with sipkit scenarios and parse what happened.

Each run gets its own directory holding a copy of the scenario, its media files
(the scenarios play `media.pcap` from their own directory) and SIPp's logs:
`messages.log` (-trace_msg), `stats.csv` (-trace_stat, dumped every second),
`screen.log` (-trace_screen), `errors.log` (-trace_err). SIPp runs in the
foreground of its own process group (never -bg, which would escape cleanup)
with -nostdin, a global -timeout and a hard kill after it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count, pairwise
from pathlib import Path
from typing import Any

from .pcap import RtpStream
from .ports import LOOPBACK, free_port_block, free_udp_port
from .procs import ManagedProcess, wait_until
from .sipmsg import SipMessage

SIPP = "sipp"
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
_RUNS = count(1)

_CALLER_KEYS = {"caller": "13800138000", "to_user": "", "extra_headers": ""}
_REGISTRAR_KEYS = {
    "auth_realm": "sipkit",
    "auth_user": "12345",
    "auth_password": "secret",
    "expires": "300",
}


@dataclass(frozen=True)
class ScenarioSpec:
    """What a sipkit scenario needs on the command line: -key and -set defaults, media files."""

    keys: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    media: tuple[str, ...] = ()
    # Text SIPp parses when loading (status codes, ...): a key in `keys` replaces
    # this default text in the run's copy of the scenario instead of going to -key.
    load_time: Mapping[str, str] = field(default_factory=dict)
    # The scenario answers challenges with [authentication]: keys user/password
    # also go to -au/-ap (SIPp does not expand keywords inside that keyword).
    auth: bool = False


SCENARIOS: dict[str, ScenarioSpec] = {
    "uac_call": ScenarioSpec(_CALLER_KEYS, {}, ("media.pcap",)),
    "uac_call_inband": ScenarioSpec(_CALLER_KEYS, {}, ("media.pcap",)),
    "uac_info": ScenarioSpec({**_CALLER_KEYS, "digit": "2"}, {}, ("media.pcap",)),
    "uac_late_offer": ScenarioSpec(_CALLER_KEYS, {}, ("media.pcap",)),
    "uac_hangup_mid": ScenarioSpec(_CALLER_KEYS, {"hangup_after_ms": "2000"}, ("media.pcap",)),
    "uac_cancel": ScenarioSpec(_CALLER_KEYS, {"cancel_after_ms": "500"}),
    "uac_options": ScenarioSpec(_CALLER_KEYS),
    "uac_bad_sdp": ScenarioSpec({**_CALLER_KEYS, "sdp_port": "99999"}),
    "uac_no_ack": ScenarioSpec(_CALLER_KEYS),
    "uac_register": ScenarioSpec(
        {"user": "12345", "password": "secret", "contact": "", "expires": "300"}, auth=True
    ),
    "uas_answer_dtmf": ScenarioSpec({}, {"ring_ms": "200"}, ("media.pcap",)),
    "uas_answer_silent": ScenarioSpec({}, {"ring_ms": "200"}),
    "uas_answer_hangup": ScenarioSpec({}, {"ring_ms": "200", "hangup_after_ms": "2000"}),
    "uas_busy": ScenarioSpec({}, {"trying": "1"}, load_time={"reject_status": "486 Busy Here"}),
    "uas_noanswer": ScenarioSpec(),
    "uas_registrar": ScenarioSpec(_REGISTRAR_KEYS),
    "uas_registrar_call": ScenarioSpec(
        {**_REGISTRAR_KEYS, **_CALLER_KEYS}, {"call_after_ms": "500"}, ("media.pcap",)
    ),
}


def can_play_pcap() -> bool:
    """SIPp's play_pcap_audio sends through a raw socket: root or CAP_NET_RAW on sipp."""
    if os.geteuid() == 0:
        return True
    sipp = shutil.which(SIPP)
    if sipp is None:
        return False
    try:
        caps = os.getxattr(sipp, "security.capability")
    except OSError:
        return False
    # vfs_cap_data: magic/flags (4 bytes), then permitted low word; CAP_NET_RAW is bit 13.
    return len(caps) >= 8 and bool(int.from_bytes(caps[4:8], "little") & (1 << 13))


def scenario_path(name: str) -> Path:
    """The XML file of a sipkit scenario (`uac_call` or `uac_call.xml`)."""
    return SCENARIO_DIR / (name if name.endswith(".xml") else f"{name}.xml")


def extra_headers(*lines: str) -> str:
    """Value for the `extra_headers` key: each line becomes a header after User-Agent."""
    for line in lines:
        if "\r" in line or "\n" in line or ":" not in line:
            raise ValueError(f"not one header line: {line!r}")
    return "".join("\r\n" + line for line in lines)


@dataclass(frozen=True)
class SipTrace:
    """One message from SIPp's -trace_msg log."""

    direction: str  # "sent" or "received"
    time: str
    transport: str
    message: SipMessage


_TRACE_SPLIT = re.compile(r"^-{20,} (\S+ \S+)\s*$", re.M)
_TRACE_HEAD = re.compile(r"^(\w+) message (sent|received)\b[^\n]*\n", re.I)


def parse_message_log(text: str) -> list[SipTrace]:
    """Split SIPp's message log into sent/received SIP messages."""
    traces: list[SipTrace] = []
    parts = _TRACE_SPLIT.split(text)
    for i in range(1, len(parts) - 1, 2):
        when, chunk = parts[i], parts[i + 1].lstrip("\n")
        m = _TRACE_HEAD.match(chunk)
        if not m:
            continue
        raw = chunk[m.end() :].lstrip("\r\n")
        if not raw.strip():
            continue
        traces.append(SipTrace(m.group(2).lower(), when, m.group(1), SipMessage.parse(raw)))
    return traces


def parse_stats(path: Path) -> dict[str, str]:
    """Last row of a -trace_stat CSV as {column: value} (cumulative columns end in `(C)`)."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    header = lines[0].rstrip(";").split(";")
    values = lines[-1].rstrip(";").split(";")
    return dict(zip(header, values, strict=False))


def _int(stats: Mapping[str, str], key: str) -> int:
    try:
        return int(stats.get(key, "0"))
    except ValueError:
        return 0


@dataclass(frozen=True)
class SippResult:
    """What a SIPp run did: exit code, call counts, SIP messages, logs."""

    scenario: str
    argv: tuple[str, ...]
    returncode: int
    timed_out: bool
    successful: int
    failed: int
    created: int
    stats: dict[str, str]
    messages: tuple[SipTrace, ...]
    stderr: str
    screen: str
    errors: str
    rundir: Path

    @property
    def ok(self) -> bool:
        """Exit code 0 (all calls successful), no failed call, not killed by the timeout."""
        return self.returncode == 0 and self.failed == 0 and not self.timed_out

    def _select(self, direction: str, method: str | None, status: int | None) -> list[SipMessage]:
        out = []
        for t in self.messages:
            msg = t.message
            if t.direction != direction:
                continue
            if status is not None and msg.status != status:
                continue
            if method is not None:
                if status is None and not msg.is_request:
                    continue
                if msg.method != method:
                    continue
            out.append(msg)
        return out

    def received(self, method: str | None = None, status: int | None = None) -> list[SipMessage]:
        """Received messages; `method` alone selects requests, with `status` the CSeq method."""
        return self._select("received", method, status)

    def sent(self, method: str | None = None, status: int | None = None) -> list[SipMessage]:
        """Sent messages, selected like `received`."""
        return self._select("sent", method, status)

    def received_statuses(self, method: str | None = None) -> list[int]:
        """Status codes of received responses (optionally for one CSeq method), in order."""
        return [
            m.status
            for m in self.received()
            if m.status is not None and (method is None or m.method == method)
        ]

    def describe(self) -> str:
        """A summary for assertion messages."""
        seen = ", ".join(
            f"{'>' if t.direction == 'sent' else '<'}{t.message.start_line[:40]}"
            for t in self.messages
        )
        return (
            f"sipp {self.scenario}: rc={self.returncode} timed_out={self.timed_out} "
            f"successful={self.successful} failed={self.failed} rundir={self.rundir}\n"
            f"messages: {seen}\nerrors: {self.errors[-1500:]}\nstderr: {self.stderr[-1500:]}"
        )


def _bound(table: str, host: str, port: int) -> bool:
    want = f"{''.join(f'{int(x):02X}' for x in reversed(host.split('.')))}:{port:04X}"
    wildcard = f"00000000:{port:04X}"
    try:
        text = Path(f"/proc/net/{table}").read_text()
    except OSError:
        return False
    return any(
        len(parts) > 3
        and parts[1] in (want, wildcard)
        and (table == "udp" or parts[3] == "0A")  # 0A: TCP_LISTEN
        for parts in (line.split() for line in text.splitlines()[1:])
    )


def udp_bound(host: str, port: int) -> bool:
    """Whether some socket is bound to UDP host:port (reads /proc/net/udp, no probing bind)."""
    return _bound("udp", host, port)


def tcp_listening(host: str, port: int) -> bool:
    """Whether some socket listens on TCP host:port (reads /proc/net/tcp)."""
    return _bound("tcp", host, port)


class SippProcess:
    """A SIPp process started in the background (UAS roles); wait() or stop() for the result."""

    def __init__(
        self,
        scenario: str | Path,
        remote: str | tuple[str, int] | None = None,
        *,
        service: str = "12345",
        local_ip: str = LOOPBACK,
        local_port: int | None = None,
        media_port: int | None = None,
        keys: Mapping[str, str] | None = None,
        variables: Mapping[str, str | int] | None = None,
        headers: Sequence[str] = (),
        inject: Sequence[Sequence[str]] | None = None,
        media: Mapping[str, Path] | None = None,
        calls: int = 1,
        timeout: float = 30.0,
        recv_timeout: float | None = None,
        workdir: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        if shutil.which(SIPP) is None:
            raise FileNotFoundError("sipp not found (Debian package sip-tester)")
        path = Path(scenario) if str(scenario).endswith(".xml") else scenario_path(str(scenario))
        if not path.exists():
            path = scenario_path(str(scenario))
        self.name = path.stem
        spec = SCENARIOS.get(self.name, ScenarioSpec())
        self.local_ip = local_ip
        self.local_port = local_port or free_udp_port(local_ip)
        self.media_port = media_port or free_port_block(4, local_ip)
        self.timeout = timeout
        base = workdir or Path(tempfile.mkdtemp(prefix="sipkit-"))
        base.mkdir(parents=True, exist_ok=True)
        self.rundir = Path(tempfile.mkdtemp(prefix=f"sipp-{self.name}-{next(_RUNS)}-", dir=base))
        text = path.read_text()
        keys = dict(keys or {})
        for k, default in spec.load_time.items():
            if k in keys:
                text = text.replace(default, keys.pop(k))
        (self.rundir / path.name).write_text(text)

        all_keys = dict(spec.keys)
        if "to_user" in all_keys and not all_keys["to_user"]:
            all_keys["to_user"] = service
        strict = self.name in SCENARIOS
        for k, v in keys.items():
            if strict and k not in spec.keys:
                raise ValueError(f"{self.name}: unknown key {k!r} (known: {sorted(spec.keys)})")
            all_keys[k] = v
        if headers:
            if "extra_headers" not in all_keys:
                raise ValueError(f"{self.name} takes no extra headers")
            all_keys["extra_headers"] = extra_headers(*headers)
        if all_keys.get("contact") == "":  # uac_register: register ourselves by default
            all_keys["contact"] = f"<sip:{all_keys['user']}@{local_ip}:{self.local_port}>"
        all_vars = {k: str(v) for k, v in spec.variables.items()}
        for name, value in (variables or {}).items():
            if strict and name not in spec.variables:
                known = sorted(spec.variables)
                raise ValueError(f"{self.name}: unknown variable {name!r} (known: {known})")
            all_vars[name] = str(value)
        self._place_media(spec, media or {})

        argv: list[str] = [SIPP]
        if remote is not None:
            argv.append(remote if isinstance(remote, str) else f"{remote[0]}:{remote[1]}")
        argv += ["-sf", path.name, "-s", service, "-i", local_ip, "-p", str(self.local_port)]
        argv += ["-mi", local_ip, "-mp", str(self.media_port), "-m", str(calls), "-nostdin"]
        argv += ["-timeout", f"{max(1, round(timeout))}s", "-timeout_error"]
        if recv_timeout is not None:
            argv += ["-recv_timeout", f"{max(1, round(recv_timeout * 1000))}ms"]
        argv += ["-trace_msg", "-message_file", "messages.log"]
        argv += ["-trace_stat", "-stf", "stats.csv", "-fd", "1"]
        argv += ["-trace_screen", "-screen_file", "screen.log"]
        argv += ["-trace_err", "-error_file", "errors.log"]
        for k, v in all_keys.items():
            argv += ["-key", k, v]
        if spec.auth:
            argv += ["-au", all_keys["user"], "-ap", all_keys["password"]]
        for k, v in all_vars.items():
            argv += ["-set", k, v]
        if inject is not None:
            csv = self.rundir / "inject.csv"
            csv.write_text("SEQUENTIAL\n" + "".join(";".join(r) + ";\n" for r in inject))
            argv += ["-inf", csv.name]
        argv += list(extra_args)
        # -t t1/tn: SIP over TCP (as a UAS SIPp then listens on TCP only).
        self.tcp = any(a == "-t" and b in ("t1", "tn") for a, b in pairwise(argv))
        self.proc = ManagedProcess(argv, name="sipp", logdir=self.rundir, cwd=self.rundir)
        self._result: SippResult | None = None

    def _place_media(self, spec: ScenarioSpec, media: Mapping[str, Path]) -> None:
        for name, src in media.items():
            shutil.copy(src, self.rundir / name)
        for name in spec.media:
            if name not in media:  # a default: 200 ms of silence
                RtpStream().silence(200).write(self.rundir / name)

    @property
    def address(self) -> tuple[str, int]:
        """Where this SIPp listens for SIP."""
        return (self.local_ip, self.local_port)

    @property
    def uri_hostport(self) -> str:
        return f"{self.local_ip}:{self.local_port}"

    def wait_ready(self, timeout: float = 5.0) -> SippProcess:
        """Wait until SIPp has bound its SIP port; raises with its stderr if it died."""
        bound = tcp_listening if self.tcp else udp_bound

        def ready() -> bool:
            return bound(*self.address) or not self.proc.alive()

        if not wait_until(ready, timeout):
            raise TimeoutError(f"sipp did not bind {self.address} in {timeout} s")
        if not self.proc.alive():
            raise RuntimeError(f"sipp exited at start:\n{self.result().describe()}")
        return self

    def alive(self) -> bool:
        return self.proc.alive()

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to finish (default: its -timeout plus 5 s), then kill and parse."""
        self.proc.wait(self.timeout + 5 if timeout is None else timeout)
        return self.result()

    def stop(self, grace: float = 2.0) -> SippResult:
        """Soft stop (SIGUSR1 lets calls end), then SIGTERM/SIGKILL; returns the result."""
        if self.proc.alive():
            self.proc.send_signal(signal.SIGUSR1)
            wait_until(lambda: not self.proc.alive(), grace)
        self.proc.stop(grace=1.0)
        return self.result()

    def result(self) -> SippResult:
        if self._result is not None:
            return self._result
        if self.proc.alive():
            self.proc.stop()
        pr = self.proc.wait(0)
        stats = parse_stats(self.rundir / "stats.csv")
        result = SippResult(
            scenario=self.name,
            argv=pr.argv,
            returncode=pr.returncode,
            timed_out=pr.timed_out,
            successful=_int(stats, "SuccessfulCall(C)"),
            failed=_int(stats, "FailedCall(C)"),
            created=_int(stats, "TotalCallCreated"),
            stats=stats,
            messages=tuple(parse_message_log(_read(self.rundir / "messages.log"))),
            stderr=pr.stderr,
            screen=_read(self.rundir / "screen.log"),
            errors=_read(self.rundir / "errors.log"),
            rundir=self.rundir,
        )
        self._result = result
        return result

    def __enter__(self) -> SippProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def start_sipp(
    scenario: str | Path, remote: str | tuple[str, int] | None = None, **kwargs: Any
) -> SippProcess:
    """Start SIPp in the background and wait until its SIP port is bound (UAS roles).

    Takes the keyword arguments of `SippProcess`. Use as a context manager, or
    call `stop()`/`wait()`: the process is always killed, also at exit.
    """
    for attempt in range(3):
        proc = SippProcess(scenario, remote, **kwargs)
        try:
            return proc.wait_ready()
        except RuntimeError:
            proc.stop()
            if attempt == 2 or not _lost_port_race(proc.result(), kwargs):
                raise
        except BaseException:
            proc.stop()
            raise
    raise AssertionError("unreachable")


def _lost_port_race(result: SippResult, kwargs: Mapping[str, Any]) -> bool:
    """SIPp could not bind a port we picked (someone took it in between): try again."""
    picked = kwargs.get("local_port") is None and kwargs.get("media_port") is None
    bind_error = result.returncode in (254, 255) and "bind" in result.stderr.lower()
    return picked and bind_error


def run_sipp(
    scenario: str | Path, remote: str | tuple[str, int] | None = None, **kwargs: Any
) -> SippResult:
    """Run SIPp to completion (UAC roles) and return its result.

    Keyword arguments are those of `SippProcess`: service (-s), local_ip,
    local_port, media_port (-mp; default a free block), keys (-key), variables
    (-set), headers (extra header lines), inject (CSV rows for -inf), media
    ({file name in the run dir: source pcap}), calls (-m), timeout (-timeout;
    the process is killed 5 s later), recv_timeout (-recv_timeout, s), workdir,
    extra_args.
    """
    for _ in range(3):
        proc = SippProcess(scenario, remote, **kwargs)
        try:
            result = proc.wait()
        finally:
            proc.stop()
        if not _lost_port_race(result, kwargs):
            break
    return result
