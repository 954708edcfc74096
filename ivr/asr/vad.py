"""Energy voice activity detection for end-of-speech decisions.

Vosk cannot be asked: its partial results trail the audio by about 1.5 s and
arrive in bursts, and its endpointer never fires on digital silence (what a
SIP phone sends between words), so the time since the last recognized word is
no measure of silence. Frame energy is immediate and needs no model.

A 10 ms frame is speech when its level (RMS after removing the frame's DC
offset, in dBFS) is at least `margin_db` above the noise floor and above
`min_level_db`. The noise floor is a low percentile of the frame levels of the
last few seconds, so a steady hum or hiss is not speech while a caller talking
over it is. Speech has started once `min_speech_s` of speech frames were
heard, so a click or a DTMF glitch does not count.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

FRAME_SECONDS = 0.01
_FULL_SCALE = 32768.0


class EnergyVad:
    def __init__(
        self,
        sample_rate: int,
        *,
        margin_db: float = 12.0,
        min_level_db: float = -55.0,
        min_speech_s: float = 0.15,
        floor_window_s: float = 5.0,
        floor_percentile: float = 10.0,
    ) -> None:
        self.frame_len = max(1, round(sample_rate * FRAME_SECONDS))
        self.frame_s = self.frame_len / sample_rate
        self.margin_db = margin_db
        self.min_level_db = min_level_db
        self.min_speech_frames = max(1, round(min_speech_s / self.frame_s))
        self.floor_percentile = floor_percentile
        self._levels: deque[float] = deque(maxlen=max(1, round(floor_window_s / self.frame_s)))
        self._carry = np.zeros(0)
        self.frames = 0
        self.speech_frames = 0
        self._last_speech_frame: int | None = None

    @property
    def position(self) -> float:
        """Seconds of audio analysed (whole frames)."""
        return self.frames * self.frame_s

    @property
    def speech_started(self) -> bool:
        return self.speech_frames >= self.min_speech_frames

    @property
    def last_speech_end(self) -> float | None:
        if self._last_speech_frame is None:
            return None
        return (self._last_speech_frame + 1) * self.frame_s

    @property
    def trailing_silence(self) -> float:
        """Seconds since the last speech frame (since the start when there was none)."""
        return self.position - (self.last_speech_end or 0.0)

    def process(self, samples: npt.ArrayLike) -> None:
        x = np.concatenate([self._carry, np.asarray(samples, dtype=np.float64)])
        n = len(x) // self.frame_len
        self._carry = x[n * self.frame_len :]
        if n == 0:
            return
        frames = x[: n * self.frame_len].reshape(n, self.frame_len)
        frames = frames - frames.mean(axis=1, keepdims=True)
        power = np.mean(frames * frames, axis=1) / (_FULL_SCALE * _FULL_SCALE)
        levels = 10 * np.log10(np.maximum(power, 1e-12))
        self._levels.extend(levels.tolist())
        floor = float(np.percentile(np.fromiter(self._levels, float), self.floor_percentile))
        threshold = max(floor + self.margin_db, self.min_level_db)
        speech = np.flatnonzero(levels >= threshold)
        if len(speech):
            self.speech_frames += len(speech)
            self._last_speech_frame = self.frames + int(speech[-1])
        self.frames += n
