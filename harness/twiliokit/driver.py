"""A webhook driver that behaves like Twilio.

It posts the documented parameters, signs each request exactly as Twilio does
(RequestValidator.compute_signature over the full public URL and the sorted POST
parameters), parses the TwiML it gets back and follows it: plays prompts
(fetching the audio), answers <Gather> with the script's keys (or nothing),
answers <Record> with real speech registered in the fake REST API, follows
<Redirect>, notes <Dial>, ends on <Hangup> or at the end of the document, then
posts the recording and status callbacks.
"""

from __future__ import annotations

import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import requests
from flask import Flask
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from .fake_api import CreatedCall, FakeTwilioApi

ACCOUNT_SID = "AC" + "5ca1ab1e" * 4
AUTH_TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
PUBLIC_BASE = "https://ivr.example.org"
HANGUP = "hangup"  # in a script: the caller hangs up at the next wait
_DEFAULT = object()

Params = Sequence[tuple[str, str]] | Mapping[str, str]


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def twiml(self) -> ET.Element:
        assert self.status == 200, f"HTTP {self.status}: {self.text}"
        assert "xml" in self.content_type, self.content_type
        root = ET.fromstring(self.body)
        assert root.tag == "Response", self.text
        return root


class Transport(Protocol):
    def request(
        self, method: str, path: str, data: list[tuple[str, str]], headers: dict[str, str]
    ) -> Reply: ...


class FlaskTransport:
    """Requests straight into the Flask app, as if it were reached at `seen_as`."""

    def __init__(self, app: Flask, seen_as: str = "http://127.0.0.1:8080") -> None:
        self.app, self.seen_as = app, seen_as

    def request(
        self, method: str, path: str, data: list[tuple[str, str]], headers: dict[str, str]
    ) -> Reply:
        client = self.app.test_client()  # one per request: safe from any thread
        r = client.open(
            path,
            method=method,
            base_url=self.seen_as,
            data=MultiDict(data) if method == "POST" else None,
            headers=headers,
        )
        return Reply(r.status_code, r.get_data(), r.content_type or "")


class HttpTransport:
    """Real HTTP to a server on loopback (e.g. behind an imagined TLS proxy)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.http = requests.Session()

    def request(
        self, method: str, path: str, data: list[tuple[str, str]], headers: dict[str, str]
    ) -> Reply:
        r = self.http.request(method, self.base + path, data=data, headers=headers, timeout=30)
        return Reply(r.status_code, r.content, r.headers.get("Content-Type", ""))


@dataclass(frozen=True)
class Speak:
    """The caller speaks `audio` at a <Record>, ending it with `end`.

    end="hangup" with action=False: the caller hangs up while speaking and the
    status callback (completed) arrives before the recording callback.
    """

    audio: Path
    end: Literal["#", "silence", "hangup"] = "#"
    action: bool = True


Step = str | Speak | None  # keys ("" or None: no key), speech, or HANGUP


@dataclass
class Callee:
    """How the called party of an outbound call behaves."""

    kind: Literal["human", "machine", "busy", "no-answer", "failed"] = "human"
    script: Sequence[Step] = ()


@dataclass
class DriverCall:
    sid: str
    base: dict[str, str]
    status_url: str
    script: list[Step]
    heard: list[tuple[str, str]] = field(default_factory=list)  # ("play", url) / ("say", text)
    transfers: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ended_by: str = ""
    seconds: int = 0

    @property
    def said(self) -> list[str]:
        return [t for kind, t in self.heard if kind == "say"]

    @property
    def played(self) -> list[str]:
        return [t for kind, t in self.heard if kind == "play"]


class TwilioDriver:
    def __init__(
        self,
        transport: Transport,
        api: FakeTwilioApi | None = None,
        *,
        public_base: str = PUBLIC_BASE,
        auth_token: str = AUTH_TOKEN,
        account_sid: str = ACCOUNT_SID,
        fetch_media: bool = True,
    ) -> None:
        self.transport = transport
        self.api = api
        self.public_base = public_base.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.account_sid = account_sid
        self.fetch_media = fetch_media
        self._media_checked: set[str] = set()
        self._lock = threading.Lock()

    # -- signed requests -------------------------------------------------------------
    def sign(self, url: str, params: Params) -> str:
        return self.validator.compute_signature(url, MultiDict(_pairs(params)))

    def path_of(self, url: str) -> str:
        assert url.startswith(self.public_base + "/"), f"{url} is not under {self.public_base}"
        return url[len(self.public_base) :]

    def post(
        self,
        url: str,
        params: Params,
        *,
        signature: Any = _DEFAULT,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """POST form parameters to a public URL, signed as Twilio signs (unless told otherwise)."""
        pairs = _pairs(params)
        hdrs = {"User-Agent": "TwilioProxy/1.1", **(headers or {})}
        sig = self.sign(url, pairs) if signature is _DEFAULT else signature
        if sig is not None:
            hdrs["X-Twilio-Signature"] = sig
        return self.transport.request("POST", self.path_of(url), pairs, hdrs)

    def get(self, url: str) -> Reply:
        return self.transport.request("GET", self.path_of(url), [], {"User-Agent": "TwilioProxy"})

    # -- calls --------------------------------------------------------------------------
    def inbound(
        self,
        *,
        caller: str = "+8613800138000",
        to: str = "+8687112345",
        extra: Mapping[str, str] | None = None,
        script: Iterable[Step] = (),
    ) -> DriverCall:
        """A caller dials the number: Twilio requests the voice URL and follows the TwiML."""
        sid = new_sid("CA")
        base = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "Direction": "inbound",
            "From": caller,
            "Caller": caller,
            "To": to,
            "Called": to,
            **(extra or {}),
        }
        call = DriverCall(sid, base, f"{self.public_base}/twilio/status", list(script))
        reply = self.post(f"{self.public_base}/twilio/voice", {**base, "CallStatus": "ringing"})
        self._run(call, reply)
        return call

    def outbound(self, created: CreatedCall, callee: Callee) -> DriverCall:
        """What Twilio does after calls.create: ring, then run the answer URL's TwiML."""
        p = created.params
        base = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": created.sid,
            "Direction": "outbound-api",
            "From": p["From"],
            "To": p["To"],
        }
        status_url = p.get("StatusCallback") or ""
        events = set(p.getlist("StatusCallbackEvent"))
        call = DriverCall(created.sid, base, status_url, list(callee.script))
        amd = p.get("MachineDetection")

        def status(state: str, **more: str) -> None:
            if status_url:
                self._check(call, self.post(status_url, {**base, "CallStatus": state, **more}))

        if "initiated" in events:
            status("initiated")
        if "ringing" in events:
            status("ringing")
        if callee.kind in ("busy", "no-answer", "failed"):
            status(callee.kind, CallDuration="0")
            call.ended_by = callee.kind
            return call
        answered_by = ("machine_start" if callee.kind == "machine" else "human") if amd else None
        extra = {"AnsweredBy": answered_by} if answered_by else {}
        if "answered" in events:
            status("in-progress", **extra)
        reply = self.post(p["Url"], {**base, "CallStatus": "in-progress", **extra})
        call.base.update(extra)
        self._run(call, reply)
        return call

    def answer_calls(self, api: FakeTwilioApi, callee_for: Callable[[str], Callee]) -> None:
        """Let the fake REST API hand every created call to this driver."""
        api.on_call = lambda created: self._outbound_safely(created, callee_for)
        self.outbound_calls: list[DriverCall] = []

    def _outbound_safely(self, created: CreatedCall, callee_for: Callable[[str], Callee]) -> None:
        call = self.outbound(created, callee_for(created.params["To"]))
        with self._lock:
            self.outbound_calls.append(call)

    # -- following TwiML ---------------------------------------------------------------------
    def _run(self, call: DriverCall, reply: Reply) -> None:
        while True:
            if not self._check(call, reply):
                self._complete(call, "application-error")
                return
            call.documents.append(reply.text)
            nxt = self._follow(call, reply.twiml())
            if nxt is None:
                return
            reply = nxt

    def _follow(self, call: DriverCall, root: ET.Element) -> Reply | None:
        """Run one document: the reply to the request it ended with; None if the call ended."""
        for verb in root:
            tag = verb.tag
            if tag in ("Say", "Play", "Pause"):
                self._hear(call, verb)
            elif tag == "Gather":
                for child in verb:
                    self._hear(call, child)
                step = call.script.pop(0) if call.script else None
                if step == HANGUP:
                    self._complete(call, "caller")
                    return None
                if isinstance(step, Speak):
                    raise AssertionError(f"script speaks where the IVR gathers keys: {step}")
                if step:
                    return self._post_in_call(call, verb.get("action") or "", {"Digits": step})
                if verb.get("actionOnEmptyResult") == "true":
                    return self._post_in_call(call, verb.get("action") or "", {})
            elif tag == "Record":
                step = call.script.pop(0) if call.script else None
                if step == HANGUP:
                    self._complete(call, "caller")
                    return None
                if not isinstance(step, Speak):
                    continue  # nothing said: an empty recording, Twilio goes on
                return self._record(call, verb, step)
            elif tag == "Redirect":
                return self._post_in_call(call, verb.text or "", {})
            elif tag == "Dial":
                call.transfers += [f"{c.tag}:{(c.text or '').strip()}" for c in verb] or [
                    (verb.text or "").strip()
                ]
            elif tag == "Hangup":
                self._complete(call, "ivr")
                return None
            else:
                raise AssertionError(f"unexpected TwiML verb <{tag}>")
        self._complete(call, "end-of-document")
        return None

    def _hear(self, call: DriverCall, verb: ET.Element) -> None:
        if verb.tag == "Say":
            call.heard.append(("say", verb.text or ""))
            call.seconds += 3
        elif verb.tag == "Play":
            url = (verb.text or "").strip()
            call.heard.append(("play", url))
            call.seconds += 3
            if self.fetch_media and url not in self._media_checked:
                r = self.get(url)
                if r.status != 200 or not r.body.startswith(b"RIFF"):
                    call.errors.append(f"prompt {url}: HTTP {r.status}")
                self._media_checked.add(url)

    def _post_in_call(self, call: DriverCall, url: str, params: Mapping[str, str]) -> Reply:
        call.seconds += 2
        return self.post(url, {**call.base, "CallStatus": "in-progress", **params})

    def _record(self, call: DriverCall, verb: ET.Element, speak: Speak) -> Reply | None:
        assert self.api is not None, "recordings need the fake REST API"
        rec_sid, rec_url = self.api.add_recording(speak.audio)
        call.recordings.append(rec_sid)
        seconds = max(1, round((speak.audio.stat().st_size - 44) / 8000))
        call.seconds += seconds
        rec = {
            "RecordingSid": rec_sid,
            "RecordingUrl": rec_url,
            "RecordingDuration": str(seconds),
        }
        callback = verb.get("recordingStatusCallback")
        action = verb.get("action") or ""
        reply: Reply | None = None
        if speak.end == "hangup":
            if speak.action:
                self._check(call, self._post_in_call(call, action, {**rec, "Digits": "hangup"}))
            self._complete(call, "caller")
        else:
            digits = {"Digits": speak.end} if speak.end != "silence" else {}
            reply = self._post_in_call(call, action, {**rec, **digits})
        if callback:
            self._check(
                call,
                self.post(
                    callback,
                    {
                        "AccountSid": self.account_sid,
                        "CallSid": call.sid,
                        "RecordingSid": rec_sid,
                        "RecordingUrl": rec_url,
                        "RecordingStatus": "completed",
                        "RecordingDuration": str(seconds),
                        "RecordingChannels": "1",
                        "RecordingSource": "RecordVerb",
                    },
                ),
            )
        return reply

    def _complete(self, call: DriverCall, by: str) -> None:
        if call.ended_by:
            return
        call.ended_by = by
        if call.status_url:
            params = {**call.base, "CallStatus": "completed", "CallDuration": str(call.seconds)}
            self._check(call, self.post(call.status_url, params))

    @staticmethod
    def _check(call: DriverCall, reply: Reply) -> bool:
        if reply.status not in (200, 204):
            call.errors.append(f"HTTP {reply.status}: {reply.text.strip()}")
            return False
        return True

    # -- helpers for tests -----------------------------------------------------------------------
    def public(self, url_or_path: str) -> str:
        parts = urlsplit(url_or_path)
        return url_or_path if parts.scheme else self.public_base + url_or_path


def _pairs(params: Params) -> list[tuple[str, str]]:
    if isinstance(params, Mapping):
        return [(k, v) for k, v in params.items() if v is not None]
    return list(params)
