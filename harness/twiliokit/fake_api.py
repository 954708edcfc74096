"""A local fake of the Twilio REST API on loopback: create calls, serve recording media.

    POST /2010-04-01/Accounts/{AccountSid}/Calls.json          -> 201 call resource
    GET  /2010-04-01/Accounts/{AccountSid}/Recordings/{Sid}[.wav|.mp3]

Every request must carry HTTP Basic auth with the account SID and auth token
(401 otherwise, like Twilio). Failures can be queued (429, 503) for the next
calls.create requests, and a recording can answer 404 a few times (not yet
available), or every media request can hang until released (a stalled host). A
created call is handed to `on_call` in a thread: the test decides how the callee
behaves (see TwilioDriver.run_outbound).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

_CALLS = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls\.json$")
_CALL = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls/(CA[0-9a-f]{32})\.json$")
_RECORDING = re.compile(
    r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Recordings/(RE[0-9a-f]{32})(\.wav|\.mp3)?$"
)


def _error(status: int, code: int, message: str) -> Response:
    body = {"code": code, "message": message, "more_info": "", "status": status}
    return Response(json.dumps(body), status=status, mimetype="application/json")


@dataclass
class CreatedCall:
    sid: str
    params: MultiDict[str, str]


@dataclass
class FakeTwilioApi:
    account_sid: str
    auth_token: str
    on_call: Callable[[CreatedCall], None] | None = None
    calls: list[CreatedCall] = field(default_factory=list)
    create_attempts: int = 0
    create_times: list[float] = field(default_factory=list)  # time.monotonic() of each
    fail_next: list[int] = field(default_factory=list)
    media_requests: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    # While set to an unset Event, every media request hangs until it is set (a stalled host).
    hold_media: threading.Event | None = None
    # While set to an unset Event, calls.create hangs until it is set (a hung API).
    hold_create: threading.Event | None = None
    media_held: int = 0
    _recordings: dict[str, bytes] = field(default_factory=dict)
    _not_ready: dict[str, int] = field(default_factory=dict)
    _stalls: dict[str, threading.Event] = field(default_factory=dict)
    # GET Calls/{Sid}.json answers these (status, duration); 404 for others.
    call_status: dict[str, tuple[str, int]] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeTwilioApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.join_calls()
        self._server.shutdown()
        self._server.server_close()

    def join_calls(self, timeout: float = 60) -> None:
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout)

    # -- recordings --------------------------------------------------------------
    def add_recording(
        self, audio: Path | bytes, *, not_ready: int = 0, stall: threading.Event | None = None
    ) -> tuple[str, str]:
        """Register recording media; (RecordingSid, RecordingUrl as Twilio sends it).

        With `stall`, requests for this recording hang until the event is set."""
        sid = "RE" + uuid.uuid4().hex
        self._recordings[sid] = audio.read_bytes() if isinstance(audio, Path) else audio
        self._not_ready[sid] = not_ready
        if stall is not None:
            self._stalls[sid] = stall
        return sid, f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"

    def recording_bytes(self, sid: str) -> bytes:
        return self._recordings[sid]

    # -- HTTP ----------------------------------------------------------------------
    def _authorized(self, request: Request, account: str) -> bool:
        auth = request.authorization
        return (
            auth is not None
            and auth.username == self.account_sid
            and auth.password == self.auth_token
            and account == self.account_sid
        )

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self._route(request)(environ, start_response)

    def _route(self, request: Request) -> Response:
        if m := _CALLS.match(request.path):
            if request.method != "POST":
                return _error(405, 20004, "Method not allowed")
            if not self._authorized(request, m.group(1)):
                self.rejected.append(request.path)
                return _error(401, 20003, "Authenticate")
            return self._create_call(request)
        if m := _CALL.match(request.path):
            if not self._authorized(request, m.group(1)):
                self.rejected.append(request.path)
                return _error(401, 20003, "Authenticate")
            return self._call(m.group(2))
        if m := _RECORDING.match(request.path):
            if not self._authorized(request, m.group(1)):
                self.rejected.append(request.path)
                return _error(401, 20003, "Authenticate")
            return self._media(m.group(2), m.group(3) or ".wav")
        return _error(404, 20404, "The requested resource was not found")

    def _create_call(self, request: Request) -> Response:
        with self._lock:
            self.create_attempts += 1
            self.create_times.append(time.monotonic())
        if self.hold_create is not None:
            self.hold_create.wait()
        with self._lock:
            if self.fail_next:
                status = self.fail_next.pop(0)
                return _error(status, 20429 if status == 429 else 20500, "Too Many Requests")
        params = MultiDict(request.form)
        for name in ("To", "From", "Url"):
            if not params.get(name):
                return _error(400, 21201, f"No '{name}' number is specified")
        call = CreatedCall("CA" + uuid.uuid4().hex, params)
        self.calls.append(call)
        if self.on_call is not None:
            t = threading.Thread(target=self.on_call, args=(call,), daemon=True)
            with self._lock:  # join_calls may run now: it must only ever see started threads
                t.start()
                self._threads.append(t)
        body = {
            "sid": call.sid,
            "account_sid": self.account_sid,
            "to": params["To"],
            "from": params["From"],
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call.sid}.json",
        }
        return Response(json.dumps(body), status=201, mimetype="application/json")

    def _call(self, sid: str) -> Response:
        known = self.call_status.get(sid)
        if known is None:
            return _error(404, 20404, "The requested resource was not found")
        status, duration = known
        body = {
            "sid": sid,
            "account_sid": self.account_sid,
            "status": status,
            "duration": str(duration),
            "api_version": "2010-04-01",
        }
        return Response(json.dumps(body), status=200, mimetype="application/json")

    def _media(self, sid: str, ext: str) -> Response:
        self.media_requests.append((sid, ext))
        hold = self._stalls.get(sid) or self.hold_media
        if hold is not None:
            with self._lock:
                self.media_held += 1
            try:
                hold.wait()
            finally:
                with self._lock:
                    self.media_held -= 1
        data = self._recordings.get(sid)
        if data is None:
            return _error(404, 20404, "The requested resource was not found")
        with self._lock:
            if self._not_ready.get(sid, 0) > 0:
                self._not_ready[sid] -= 1
                return _error(404, 20404, "The requested resource was not found")
        if ext == ".mp3":
            return Response(_to_mp3(data), status=200, mimetype="audio/mpeg")
        return Response(data, status=200, mimetype="audio/x-wav")


def _to_mp3(wav: bytes) -> bytes:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is needed to serve .mp3 recordings")
    cmd = [ffmpeg, "-nostdin", "-loglevel", "error", "-i", "pipe:0", "-f", "mp3", "pipe:1"]
    return subprocess.run(cmd, input=wav, capture_output=True, check=True).stdout
