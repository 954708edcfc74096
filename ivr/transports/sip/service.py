"""Build the SIP phone the service runs: prompt audio, recognizers, start-up checks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ivr.flow import Flow, Say
from ivr.prompts import PromptLibrary, concat_pcm, read_pcm
from ivr.transports.sip.phone import SipPhone

if TYPE_CHECKING:
    from ivr.app import Hotline
    from ivr.config import SipConfig

log = logging.getLogger(__name__)


def prompt_player(library: PromptLibrary) -> Any:
    clip = lru_cache(maxsize=1024)(read_pcm)

    def audio(flow: Flow, say: Say, variables: Mapping[str, Any]) -> bytes:
        template = flow.prompts.get(say.prompt)
        paths = (
            library.clips_for(template, variables)
            if template is not None
            else library.clips_for_text(say.text)
        )
        return concat_pcm(paths, read=clip)

    return audio


def dialer_config(sip: SipConfig) -> SipConfig:
    """The SIP settings of a dialer in its own process: its own port, no registration.

    It must not take the serving phone's port, nor replace its registration (the
    registrar would then send inbound calls to the dialer). In-dialog requests of
    its calls come to its Contact, which names its own port.
    """
    return sip.model_copy(update={"port": sip.dialer_port, "mode": "trunk"})


def build_phone(app: Hotline, *, load_asr: bool = True, dialer: bool = False) -> SipPhone:
    """The phone; `dialer`: only for survey calls, in a process without the serving phone."""
    library = PromptLibrary.from_settings(app.settings)
    missing = library.missing()
    if missing:
        log.error(
            "%d prompt clip(s) missing in %s (e.g. %r): run `make prompts`; those parts of "
            "prompts will be silent",
            len(missing),
            library.dir,
            missing[0],
        )
    # The SIP port first: a second process on it fails before loading any model.
    sip = dialer_config(app.settings.sip) if dialer else None
    phone = SipPhone(app, prompt_audio=prompt_player(library), sip=sip)
    if load_asr:
        from ivr.asr.models import ModelError
        from ivr.transports.sip.recognizer import AsrPool

        try:
            phone.asr = AsrPool(app.settings.asr, app.settings.base_dir)
        except ModelError as exc:
            log.warning("%s; statements are recorded and wait for `ivr transcribe --pending`", exc)
    return phone
