"""Voice prompts and the release's own voice.

:func:`shape_prompt` cuts a voice prompt the way the model saw prompts in training. A codec whose decoder reads a
voice vector (``Codec.has_speaker``) also needs a reference when there is no prompt: a release may carry the codes of
a few seconds of one recording, its **own voice** (``config.json`` key ``voice``, written by
``ucodec export-tts --voice WAV``), which :func:`reference_codes` then hands to the decoder. Without a prompt or
an own voice the decoder takes the voice from the generated codes: the whole sentence offline, each chunk when
streamed (so only then do the two differ; ``export-tts --voice`` avoids it).
"""

from __future__ import annotations

import os
import warnings

import torch

from codec.audio import load_audio

MAX_PROMPT_SECONDS = 15.0  # longer prompts are cut (they only cost time: the model saw ~3 s prompts in training)

PromptAudio = torch.Tensor | str | os.PathLike | None


def shape_prompt(
    prompt_wav: PromptAudio, prompt_text: str | None, sampling, sample_rate: int
) -> tuple[torch.Tensor | None, str | None]:
    """A voice prompt shaped like the prompts the model was trained on → ``(wav [1, 1, T] | None, transcript)``.

    Training showed the model either a whole utterance of at most ``sampling.max_transcribed_prompt_seconds`` with
    its transcript, or a 2–4 s crop without text. Far outside that, the model tends to stop at once. So a prompt
    without transcript is cut to its middle ``sampling.prompt_seconds``, and a transcribed prompt longer than the
    limit is cut the same way and used without its transcript (with a warning).

    Args:
        prompt_wav: audio ``[T]``/``[1, T]`` at ``sample_rate``, a file path, or None (→ ``(None, prompt_text)``).
        sampling: the model's ``SamplingConfig``.

    Raises:
        ValueError: not a tensor or path, or empty audio. FileNotFoundError: no such file.
    """
    if prompt_wav is None:
        return None, prompt_text
    if isinstance(prompt_wav, (str, os.PathLike)):
        wav = load_audio(prompt_wav, sample_rate)
    elif isinstance(prompt_wav, torch.Tensor):
        wav = prompt_wav.float()
    else:
        raise ValueError(f"prompt_wav must be a waveform tensor or a file path, got {type(prompt_wav).__name__}")
    wav = wav.reshape(1, 1, -1)
    if wav.shape[-1] == 0:
        raise ValueError("the voice prompt is empty")
    seconds = wav.shape[-1] / sample_rate
    if prompt_text and sampling.max_transcribed_prompt_seconds and seconds > sampling.max_transcribed_prompt_seconds:
        warnings.warn(
            f"the voice prompt lasts {seconds:.1f} s; this model was trained with transcribed prompts of at most "
            f"{sampling.max_transcribed_prompt_seconds:g} s, so its transcript is not used and the middle "
            f"{sampling.prompt_seconds:g} s are (give a shorter prompt to use a transcript)",
            stacklevel=4,
        )
        prompt_text = None
    if not prompt_text and sampling.prompt_seconds and seconds > sampling.prompt_seconds:
        keep = int(sampling.prompt_seconds * sample_rate)
        start = (wav.shape[-1] - keep) // 2
        wav = wav[..., start : start + keep]
    limit = int(MAX_PROMPT_SECONDS * sample_rate)
    if wav.shape[-1] > limit:
        warnings.warn(f"voice prompt cut to its first {MAX_PROMPT_SECONDS:g} s", stacklevel=4)
        wav = wav[..., :limit]
    return wav, prompt_text


def voice_to_meta(codes: torch.Tensor, source: str) -> dict:
    """The release's own voice ``codes [Q, F]`` as a ``config.json`` entry (a few hundred integers)."""
    return {"source": source, "codes": codes.long().tolist()}


def voice_from_meta(meta: dict, num_codebooks: int, codebook_size: int, where: str) -> torch.Tensor | None:
    """Codes ``[Q, F]`` of a release's own voice (``config.json`` key ``voice``), or None when it has none;
    ``num_codebooks`` is the codec's (the voice is a reference for its decoder, at full depth).

    Raises:
        ValueError: the entry is malformed or its codes do not fit the codec's codebooks.
    """
    entry = meta.get("voice")
    if entry is None:
        return None
    try:
        codes = torch.tensor(entry["codes"], dtype=torch.long)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: malformed 'voice' entry ({exc})") from None
    ok = codes.dim() == 2 and codes.shape[0] == num_codebooks and codes.shape[1] >= 1
    if not ok or codes.min() < 0 or codes.max() >= codebook_size:
        raise ValueError(f"{where}: 'voice' codes must be [{num_codebooks}, F >= 1] in [0, {codebook_size})")
    return codes


def reference_codes(prompt: torch.Tensor | None, voice: torch.Tensor | None, generated: torch.Tensor) -> torch.Tensor:
    """Which codes a voice-conditioned decoder takes the voice from: the prompt's ``[Q, Fp]``, else the release's
    own voice ``[Q, Fv]``, else the generated codes ``[1, Q, F]`` themselves (all levels) → ``[1, Q, F']``."""
    ref = prompt if prompt is not None else voice
    return generated if ref is None else ref[None]
