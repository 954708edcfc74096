"""baresip 1.0.0 as a scripted caller: generated config dir, aufile audio, ctrl_tcp control.

ctrl_tcp speaks netstrings (`LEN:JSON,`): commands `{"command", "params",
"token"}` get `{"response": true, "ok", "data", "token"}`; events arrive as
`{"event": true, "type": "CALL_ESTABLISHED", ...}`. The menu module provides the
commands (dial, hangup, sndcode, reginfo, ...).

Gotchas found with Debian's 1.0.0: `net_interface lo` fails, an address works;
without `sip_listen` it takes 5060; aufile wants S16LE at exactly the source
rate/channels and hangs up the call at end of file (AUDIO_ERROR, CALL_CLOSED);
there is no null player, so received audio goes to an unused `aubridge` device
and the sndfile module writes both directions as WAV; REGISTER_OK can fire
before ctrl_tcp is connected (use `reginfo`); sndcode sends RFC 4733 events
while PCMU packets keep flowing; its INVITEs and 200s carry an empty
`Supported:` header.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import shutil
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ivr.asr.audio import ulaw2lin

from .pcap import SAMPLE_RATE, wav_to_ulaw, write_pcm16_wav
from .ports import LOOPBACK, free_port_block, free_sip_port, free_tcp_port
from .procs import ManagedProcess, ProcessResult, wait_until

BARESIP = "baresip"
MODULE_PATH = Path("/usr/lib/baresip/modules")


def caller_wav(src: Path, dst: Path, *, trailing_silence_s: float = 30.0) -> Path:
    """Convert a WAV to what aufile reads: mono S16LE at 8 kHz, padded with silence.

    aufile needs the sample rate and channel count baresip asks for (our config
    sets ausrc_srate 8000, ausrc_channels 1) and S16LE. At the end of the file
    baresip raises AUDIO_ERROR and HANGS UP the call: the pad sets how long the
    caller stays on the line after speaking.
    """
    pcm = ulaw2lin(wav_to_ulaw(src))
    pcm += b"\x00\x00" * int(SAMPLE_RATE * trailing_silence_s)
    return write_pcm16_wav(dst, pcm, SAMPLE_RATE)


def silence_wav(dst: Path, seconds: float = 60.0) -> Path:
    """A silent 8 kHz S16LE WAV for aufile."""
    return write_pcm16_wav(dst, b"\x00\x00" * int(SAMPLE_RATE * seconds), SAMPLE_RATE)


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class Baresip:
    """A baresip user agent; `registrar=None` means no registration (dial URIs directly)."""

    def __init__(
        self,
        *,
        workdir: Path,
        user: str = "caller",
        password: str = "secret",
        registrar: tuple[str, int] | None = None,
        audio_wav: Path | None = None,
        trailing_silence_s: float = 30.0,
        host: str = LOOPBACK,
        answermode: str = "manual",
        record: bool = True,
        extra_config: Mapping[str, str] | None = None,
    ) -> None:
        if shutil.which(BARESIP) is None:
            raise FileNotFoundError("baresip not found (Debian package baresip)")
        self.workdir = workdir
        self.confdir = workdir / "baresip"
        self.confdir.mkdir(parents=True, exist_ok=True)
        self.recordings_dir = workdir / "baresip-audio"
        self.recordings_dir.mkdir(exist_ok=True)
        self.host = host
        self.user = user
        self.registrar = registrar
        self.sip_port = free_sip_port(host, tls_next=True)  # TLS on the next port
        self.ctrl_port = free_tcp_port(host)
        rtp = free_port_block(20, host)
        wav = self.confdir / "source.wav"
        if audio_wav is not None:
            caller_wav(audio_wav, wav, trailing_silence_s=trailing_silence_s)
        else:
            silence_wav(wav, trailing_silence_s)
        config = {
            "poll_method": "epoll",
            "sip_listen": f"{host}:{self.sip_port}",
            "call_local_timeout": "120",
            "call_max_calls": "4",
            "audio_source": f"aufile,{wav}",
            "audio_player": "aubridge,sipkit-null",
            "audio_alert": "aubridge,sipkit-null",
            "ausrc_srate": str(SAMPLE_RATE),
            "auplay_srate": str(SAMPLE_RATE),
            "ausrc_channels": "1",
            "auplay_channels": "1",
            "audio_buffer": "20-160",
            "rtp_ports": f"{rtp}-{rtp + 19}",
            "rtp_timeout": "0",
            "net_interface": host,  # an address: "lo" does not work
            "module_path": str(MODULE_PATH),
            "ctrl_tcp_listen": f"{host}:{self.ctrl_port}",
            "snd_path": str(self.recordings_dir),
            **(extra_config or {}),
        }
        modules = ["g711.so", "aufile.so", "aubridge.so"]
        if record:
            modules.append("sndfile.so")
        lines = [f"{k}\t{v}" for k, v in config.items()]
        lines += [f"module\t{m}" for m in modules]
        lines += [f"module_app\t{m}" for m in ("account.so", "menu.so", "ctrl_tcp.so")]
        (self.confdir / "config").write_text("\n".join(lines) + "\n")
        if registrar is not None:
            aor = f"sip:{user}@{registrar[0]}:{registrar[1]}"
            params = f";auth_pass={password};regint=60"
        else:
            aor = f"sip:{user}@{host}:{self.sip_port}"
            params = ";regint=0"
        account = f"<{aor}>{params};answermode={answermode};audio_codecs=PCMU/8000/1;ptime=20"
        (self.confdir / "accounts").write_text(account + "\n")
        (self.confdir / "contacts").write_text("")
        self.aor = aor
        self.proc: ManagedProcess | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._responses: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []  # every event received, in order
        self._token = 0
        self._lock = threading.Lock()
        self._result: ProcessResult | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Baresip:
        """Start, connect to ctrl_tcp, and wait for REGISTER_OK when there is a registrar."""
        argv = [BARESIP, "-f", str(self.confdir), "-v"]
        self.proc = ManagedProcess(argv, name="baresip", logdir=self.workdir)
        deadline = time.monotonic() + timeout
        while True:
            if not self.proc.alive():
                raise RuntimeError(f"baresip exited at start:\n{self.log()[-3000:]}")
            try:
                self._sock = socket.create_connection((self.host, self.ctrl_port), timeout=0.5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"baresip ctrl_tcp not up:\n{self.log()[-3000:]}") from None
                time.sleep(0.1)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, args=(self._sock,), daemon=True)
        self._reader.start()
        if self.registrar is not None:
            # REGISTER_OK may come before ctrl_tcp is connected: ask reginfo instead.
            left = max(1.0, deadline - time.monotonic())
            if not wait_until(self.registered, left, interval=0.2):
                log = self.log()
                self.stop()
                raise TimeoutError(f"baresip did not register:\n{log[-3000:]}")
        return self

    def registered(self) -> bool:
        """Whether the account's registration is OK (from the `reginfo` command)."""
        data = str(self.command("reginfo").get("data", ""))
        data = re.sub(r"\x1b\[[0-9;]*m", "", data)  # colour codes
        return re.search(r"\bOK\b", data) is not None

    def _read_loop(self, sock: socket.socket) -> None:
        buf = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while True:
                    colon = buf.find(b":")
                    if colon < 0:
                        break
                    size = int(buf[:colon])
                    if len(buf) < colon + 1 + size + 1:
                        break
                    payload = buf[colon + 1 : colon + 1 + size]
                    buf = buf[colon + 1 + size + 1 :]
                    msg = json.loads(payload)
                    if msg.get("event"):
                        self.events.append(msg)
                    elif msg.get("response"):
                        self._responses.put(msg)
        except (OSError, ValueError):
            return

    def log(self) -> str:
        """baresip's stdout+stderr so far."""
        text = ""
        for suffix in ("out", "err"):
            with contextlib.suppress(OSError):
                text += (self.workdir / f"baresip.{suffix}").read_text(errors="replace")
        return text

    def stop(self) -> ProcessResult | None:
        """Quit baresip (kills the process group) and close the control connection."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        if self.proc is not None and self._result is None:
            self._result = self.proc.stop(grace=2.0)
        return self._result

    def __enter__(self) -> Baresip:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control -----------------------------------------------------------------------------

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Send a ctrl_tcp command and return its response (`ok`, `data`)."""
        if self._sock is None:
            raise RuntimeError("baresip is not running")
        with self._lock:
            self._token += 1
            token = f"sipkit{self._token}"
            msg = {"command": command, "params": params, "token": token}
            self._sock.sendall(_netstring(json.dumps(msg).encode()))
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    resp = self._responses.get(timeout=left)
                except queue.Empty:
                    break
                if resp.get("token") == token:
                    return resp
        raise TimeoutError(f"baresip: no response to {command} {params}")

    def dial(self, uri: str) -> dict[str, Any]:
        """Start a call to `uri` (sip:12345@proxy:port)."""
        return self.command("dial", uri)

    def send_dtmf(self, digits: str, gap: float = 0.3) -> None:
        """Send DTMF digits (RFC 4733 via telephone-event) on the current call."""
        for i, digit in enumerate(digits):
            if i:
                time.sleep(gap)
            self.command("sndcode", digit)

    def hangup(self) -> dict[str, Any]:
        """Hang up the current call."""
        return self.command("hangup")

    def wait_event(
        self, event_type: str, timeout: float = 10.0, *, since: int = 0
    ) -> dict[str, Any]:
        """The first `event_type` event at index >= `since` in `events`, waiting up to timeout."""

        def find() -> dict[str, Any] | None:
            for ev in self.events[since:]:
                if ev.get("type") == event_type:
                    return ev
            return None

        if not wait_until(lambda: find() is not None, timeout):
            seen = [e.get("type") for e in self.events]
            raise TimeoutError(f"baresip: no {event_type} in {timeout} s (events: {seen})")
        found = find()
        assert found is not None
        return found

    def event_types(self) -> list[str]:
        return [str(e.get("type")) for e in self.events]

    def recordings(self) -> list[Path]:
        """WAV files the sndfile module wrote (decoded audio of each direction)."""
        return sorted(self.recordings_dir.glob("*.wav"))
