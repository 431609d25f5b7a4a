"""A folder of stored voice prompts for the speech server: ``NAME.wav`` (+ optional ``NAME.txt`` transcript).

The server's ``voice`` field names one of them, or ``default`` for the model's own voice (no prompt). Every prompt
is loaded and checked when the server starts, so a broken file is a start-up error naming the file, never a failed
request later.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from codec.audio import load_audio
from demo.speech import MAX_PROMPT_TEXT_CHARS, check_text

DEFAULT_VOICE = "default"  # no prompt: the model's own voice
VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
MAX_VOICE_SECONDS = 30.0  # TTS cuts prompts at 15 s anyway; a longer file is most likely the wrong file


@dataclass(frozen=True)
class Voice:
    """One stored prompt: its audio at the model rate and its transcript (None when no ``.txt`` is given)."""

    name: str
    wav: torch.Tensor  # [1, T] float at the TTS sample rate
    text: str | None


class VoiceStore:
    """The voices the server can speak with, by name.

    Args:
        folder: a directory of ``NAME.wav|flac|ogg`` files with optional ``NAME.txt`` transcripts, or None for the
            default voice only.
        sample_rate: the TTS rate; prompts of any rate are resampled to it.

    Raises:
        NotADirectoryError: ``folder`` is not a directory.
        ValueError: a voice is named ``default``, has an unusable name or audio, or two files share a name.
    """

    def __init__(self, folder: str | os.PathLike | None, sample_rate: int) -> None:
        self.voices: dict[str, Voice] = {}
        if folder is None:
            return
        root = Path(folder)
        if not root.is_dir():
            raise NotADirectoryError(f"voices folder not found: {root}")
        for path in sorted(p for p in root.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
            name = path.stem
            if not VOICE_NAME.match(name):
                raise ValueError(f"{path}: voice names are letters, digits, '_', '-', '.' (at most 64), got {name!r}")
            if name == DEFAULT_VOICE:
                raise ValueError(f"{path}: {DEFAULT_VOICE!r} is reserved for the model's own voice; rename the file")
            if name in self.voices:
                raise ValueError(f"{path}: a second audio file for voice {name!r}")
            wav = load_audio(path, sample_rate, max_seconds=MAX_VOICE_SECONDS)  # ValueError names the path
            if wav.numel() == 0:
                raise ValueError(f"{path}: the voice prompt is empty")
            transcript = path.with_suffix(".txt")
            text = None
            if transcript.is_file():
                text = check_text(
                    transcript.read_text(encoding="utf-8"), MAX_PROMPT_TEXT_CHARS, f"transcript {transcript}"
                )
            self.voices[name] = Voice(name, wav.reshape(1, -1), text)

    @property
    def names(self) -> list[str]:
        """``default`` followed by the stored voices, sorted."""
        return [DEFAULT_VOICE, *sorted(self.voices)]

    def get(self, name: object) -> Voice | None:
        """The voice called ``name`` (None for ``default``).

        Raises:
            ValueError: no such voice (the message lists the available ones).
        """
        if name == DEFAULT_VOICE:
            return None
        if not isinstance(name, str) or name not in self.voices:
            raise ValueError(f"unknown voice {name!r}; available: {', '.join(self.names)}")
        return self.voices[name]
