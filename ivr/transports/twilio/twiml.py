"""Verbs -> TwiML, and the URLs the TwiML sends Twilio to next.

Every action URL carries the step sequence number (`seq`) of the request it
answers, so a retried request is recognized and answered with the TwiML stored
for that step instead of advancing the flow twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather as TwimlGather
from twilio.twiml.voice_response import VoiceResponse

from ivr.config import TwilioConfig
from ivr.flow import Flow, Gather, Hangup, Play, Record, RecordingFinished, Say, Transfer, Verb
from ivr.transports.twilio.prompts import PromptAudio


@dataclass(frozen=True)
class Links:
    """Absolute URLs under the public base URL Twilio reaches this service at."""

    base: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", self.base.rstrip("/"))

    def action(self, kind: str, seq: int) -> str:
        return f"{self.base}/twilio/{kind}?seq={seq}"

    def transcript_poll(self, seq: int, poll: int, event: RecordingFinished) -> str:
        """The next poll for a recorded statement's transcript (the record action's step).

        Only what Twilio repeats in a retried record action goes in, so that a retry is
        answered with the same document."""
        sid = (event.recording or {}).get("recording_sid") or ""
        query = {"seq": seq, "poll": poll, "rec": sid, "end": event.reason}
        return f"{self.base}/twilio/transcript?{urlencode(query)}"

    @property
    def recording_callback(self) -> str:
        return f"{self.base}/twilio/recording"

    def prompt(self, clip_ids: Sequence[str]) -> str:
        return f"{self.base}/twilio/prompt/{'-'.join(clip_ids)}.wav"

    def survey(self, ctx: str) -> str:
        return f"{self.base}/twilio/survey?ctx={ctx}"

    def status(self, ctx: str | None = None) -> str:
        return f"{self.base}/twilio/status" + (f"?ctx={ctx}" if ctx else "")


class TwimlRenderer:
    def __init__(self, cfg: TwilioConfig, prompts: PromptAudio | None) -> None:
        self.cfg = cfg
        self.prompts = prompts

    def render(
        self,
        verbs: Sequence[Verb],
        variables: Mapping[str, Any],
        flow: Flow,
        links: Links,
        seq: int,
        ended: bool,
    ) -> str:
        """TwiML for one step; `seq` numbers the request Twilio will make next."""
        r = VoiceResponse()
        # Prompts right before a <Gather> play inside it: a key pressed during the
        # greeting counts (Twilio drops keys pressed during a <Say>/<Play> outside it).
        before: list[Say | Play] = []
        for verb in verbs:
            if isinstance(verb, Say | Play):
                before.append(verb)
                continue
            if isinstance(verb, Gather):
                self._gather(r, verb, before, flow, variables, links, seq)
                before = []
                continue
            self._prompts(r, before, flow, variables, links)
            before = []
            if isinstance(verb, Record):
                self._record(r, verb, links, seq)
            elif isinstance(verb, Transfer):
                self._dial(r, verb.target, links, seq)
            elif isinstance(verb, Hangup):
                r.hangup()
        self._prompts(r, before, flow, variables, links)
        last = verbs[-1] if verbs else None
        if ended and not isinstance(last, Hangup | Transfer):
            r.hangup()
        return str(r)

    def hold(
        self,
        flow: Flow,
        variables: Mapping[str, Any],
        links: Links,
        seq: int,
        poll: int,
        event: RecordingFinished,
        *,
        announce: bool,
    ) -> str:
        """While the transcript is made: the flow's `hold` prompt once, then the next poll."""
        r = VoiceResponse()
        if announce and "hold" in flow.prompts:
            self._say(r, Say("hold", flow.prompts["hold"]), flow, variables, links)
        r.redirect(links.transcript_poll(seq, poll, event), method="POST")
        return str(r)

    def hangup(self) -> str:
        r = VoiceResponse()
        r.hangup()
        return str(r)

    def transfer_failed(self, flow: Flow, variables: Mapping[str, Any], links: Links) -> str:
        """After a transfer nobody answered: the flow's `transfer_failed` prompt (or its
        `sorry`), then hang up."""
        r = VoiceResponse()
        name = "transfer_failed" if "transfer_failed" in flow.prompts else "sorry"
        if name in flow.prompts:
            self._say(r, Say(name, flow.prompts[name]), flow, variables, links)
        r.hangup()
        return str(r)

    def _say(
        self,
        parent: VoiceResponse | TwimlGather,
        say: Say,
        flow: Flow,
        variables: Mapping[str, Any],
        links: Links,
    ) -> None:
        if self.cfg.voice == "play" and self.prompts is not None:
            ids = self.prompts.clip_ids(flow, say, variables)
            if ids:
                parent.play(links.prompt(ids))
                return
        if not say.text.strip():
            return
        kwargs: dict[str, Any] = {"language": self.cfg.say_language}
        if self.cfg.say_voice:
            kwargs["voice"] = self.cfg.say_voice
        parent.say(say.text, **kwargs)

    def _prompts(
        self,
        parent: VoiceResponse | TwimlGather,
        prompts: Sequence[Say | Play],
        flow: Flow,
        variables: Mapping[str, Any],
        links: Links,
    ) -> None:
        for prompt in prompts:
            if isinstance(prompt, Say):
                self._say(parent, prompt, flow, variables, links)
            else:
                parent.play(prompt.url)

    def _gather(
        self,
        r: VoiceResponse,
        verb: Gather,
        before: Sequence[Say | Play],
        flow: Flow,
        variables: Mapping[str, Any],
        links: Links,
        seq: int,
    ) -> None:
        g = r.gather(
            input="dtmf",
            num_digits=verb.num_digits,
            timeout=max(1, math.ceil(verb.timeout_s)),
            finish_on_key=verb.finish_on_key or "",
            action=links.action("gather", seq),
            method="POST",
            action_on_empty_result=True,
        )
        self._prompts(g, [*before, *verb.prompts], flow, variables, links)
        # Only reached if Twilio skips the action on an empty result.
        r.redirect(links.action("timeout", seq), method="POST")

    def _record(self, r: VoiceResponse, verb: Record, links: Links, seq: int) -> None:
        r.record(
            action=links.action("record", seq),
            method="POST",
            max_length=verb.max_length_s,
            # Twilio's timeout also ends a recording the caller has not started yet: at
            # least record_timeout_s, so a slow starter is not cut off.
            timeout=max(1, math.ceil(verb.silence_end_s), self.cfg.record_timeout_s),
            finish_on_key=verb.finish_on_key or "",
            play_beep=verb.beep,
            trim="trim-silence",
            recording_status_callback=links.recording_callback,
            recording_status_callback_method="POST",
            recording_status_callback_event="completed absent",
        )
        # Twilio skips the action for an empty recording and goes on here.
        r.redirect(links.action("timeout", seq), method="POST")

    def _dial(self, r: VoiceResponse, target: str, links: Links, seq: int) -> None:
        # The action reports how the transfer ended; a failed one gets a fallback there.
        d = r.dial(
            action=links.action("dial", seq),
            method="POST",
            timeout=self.cfg.transfer_timeout_s,
        )
        if target.startswith(("sip:", "sips:")):
            d.sip(target)
        elif target.startswith("client:"):
            d.client(target.removeprefix("client:"))
        else:
            d.number(target.removeprefix("tel:"))
