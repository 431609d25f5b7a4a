"""Word and phoneme times from a CTC model: the codec's content head, or the mel phone model
(:mod:`codec.content.phone_model`, ``ucodec align MANIFEST OUT --phone-model DIR``).

A codec trained with a phoneme CTC head (:mod:`codec.nn.content`) reads phonemes from its first ``levels`` RVQ levels
at ``ctc_upsample`` sub-frames per frame (25 ms at 5 Hz x 8). ``torchaudio.functional.forced_align`` finds the
best path of the transcript's phonemes (espeak-ng, :mod:`codec.content.phonemes`) through those posteriors; a word spans
from its first phoneme's start to its last phoneme's end. Output: one JSON line per utterance,
``{"id", "words": [{"word", "start", "end"}], "phones": [{"symbol", "start", "end"}]}`` with times in seconds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Alignment:
    """Times of one utterance (seconds)."""

    id: str
    words: list[dict]  # {"word", "start", "end"}
    phones: list[dict]  # {"symbol", "start", "end"}

    def to_json(self, **extra) -> str:
        """One JSONL line (without the newline); ``extra`` fields follow the three of every aligner."""
        return json.dumps({"id": self.id, "words": self.words, "phones": self.phones, **extra}, ensure_ascii=False)


def emissions(model, wav: torch.Tensor) -> tuple[torch.Tensor, float, tuple[str, ...]]:
    """``(log_probs [1, T', V + 1], seconds per step, symbols)`` of ``wav [1, T]`` from a codec's CTC head or a
    :class:`~codec.content.phone_model.PhoneModel`."""
    from codec.content.phone_model import PhoneModel

    if isinstance(model, PhoneModel):
        with torch.inference_mode():
            return model(wav).float(), model.cfg.seconds_per_step, model.cfg.symbols
    cfg = model.config.content
    codes = model.encode(wav[None], num_codebooks=cfg.levels)
    step = model.hop_length / cfg.ctc_upsample / model.sample_rate  # seconds per sub-frame
    return model.phoneme_log_probs(codes).float(), step, cfg.symbols


def align_one(model, wav: torch.Tensor, words: list[tuple[str, list[int]]], utt_id: str = "") -> Alignment:
    """Align one utterance.

    Args:
        model: a :class:`~codec.model.Codec` with a CTC head, or a :class:`~codec.content.phone_model.PhoneModel`
            (reads the audio at 50 Hz: phones placed to 20 ms).
        wav: ``[1, T]`` audio at the model's rate.
        words: ``[(word, [phoneme ids]), ...]`` from :func:`codec.content.phonemes.phonemize_words`.

    Raises:
        ValueError: no phoneme in the transcript, or more phonemes than the audio has sub-frames.
    """
    import torchaudio.functional as AF

    targets = [i for _, ids in words for i in ids]
    if not targets:
        raise ValueError(f"{utt_id or 'utterance'}: the transcript has no phoneme to align")
    log_probs, step, symbols = emissions(model, wav)  # [1, T', V+1]
    rate = model.sample_rate
    usable = min(log_probs.shape[1], max(1, round(wav.shape[-1] / rate / step)))
    log_probs = log_probs[:, :usable]
    if len(targets) > usable:
        raise ValueError(
            f"{utt_id or 'utterance'}: {len(targets)} phonemes in {wav.shape[-1] / rate:.2f} s is more "
            f"than the aligner's {usable} steps"
        )
    try:
        path, scores = AF.forced_align(log_probs, torch.tensor([targets], dtype=torch.int32), blank=0)
    except RuntimeError as exc:  # e.g. too many repeats for the sub-frames
        raise ValueError(f"{utt_id or 'utterance'}: cannot align ({exc})") from None
    spans = AF.merge_tokens(path[0], scores[0].exp())
    phones = [
        {"symbol": symbols[s.token - 1], "start": round(s.start * step, 3), "end": round(s.end * step, 3)}
        for s in spans
    ]
    out_words, k = [], 0
    for word, ids in words:
        if not ids:
            continue
        first, last = phones[k], phones[k + len(ids) - 1]
        out_words.append({"word": word, "start": first["start"], "end": last["end"]})
        k += len(ids)
    return Alignment(utt_id, out_words, phones)


class ResumableLines:
    """The JSONL output of an align run, written line by line to ``OUT.partial`` so that a killed run resumes:
    complete lines of utterances still in the manifest are kept and :attr:`done` lists their ids (a line cut by the
    kill is dropped); :meth:`finish` moves everything to ``OUT`` atomically (nothing when no line was made)."""

    def __init__(self, out: str | os.PathLike, ids: set[str]) -> None:
        self.out = Path(out)
        self.partial = self.out.with_name(self.out.name + ".partial")
        self.lines: list[str] = []
        self.done: set[str] = set()
        if self.partial.is_file():
            for line in self.partial.read_text(encoding="utf-8").splitlines():
                try:
                    key = str(json.loads(line)["id"])
                except (ValueError, KeyError, TypeError):
                    continue
                if key in ids and key not in self.done:
                    self.lines.append(line + "\n")
                    self.done.add(key)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.partial, "w", encoding="utf-8")
        self._fh.writelines(self.lines)
        self._fh.flush()

    def add(self, line: str) -> None:
        self.lines.append(line)
        self._fh.write(line)
        self._fh.flush()

    def finish(self) -> int:
        from codec.atomic import write_text_atomic

        self._fh.close()
        if self.lines:
            write_text_atomic(self.out, "".join(self.lines))
        self.partial.unlink(missing_ok=True)
        return len(self.lines)


def align_manifest(
    model, manifest: str | os.PathLike, out: str | os.PathLike, language: str = "en-us", progress: bool = True
) -> tuple[int, list[str]]:
    """Align every utterance of a manifest into a JSONL file (written atomically at the end; a killed run resumes
    from ``OUT.partial``, :class:`ResumableLines`).

    Returns:
        ``(aligned, failures)``: the number of lines written and one message per utterance that could not be
        aligned (an empty transcript, speech too fast for the head, unreadable audio).

    Raises:
        FileNotFoundError / ValueError: no manifest, an empty one, no CTC head, or no espeak-ng.
    """
    from tqdm import tqdm

    from codec.audio import load_audio
    from codec.content.phone_model import PhoneModel
    from codec.content.phonemes import phonemize_words
    from codec.manifest import read_manifest

    heads = getattr(model, "content", None)
    if not isinstance(model, PhoneModel) and (heads is None or heads.ctc is None):
        raise ValueError("this codec has no phoneme CTC head; align needs a codec trained with model.content.symbols")
    utts = read_manifest(manifest)
    if not utts:
        raise ValueError(f"{manifest}: the manifest has no utterances")
    words = phonemize_words([u.text or "" for u in utts], language)  # before any output exists: no espeak, no file
    output = ResumableLines(out, {u.id for u in utts})
    todo = [(u, ws) for u, ws in zip(utts, words, strict=True) if u.id not in output.done]
    failures = []
    for utt, ws in tqdm(todo, desc="align", unit="utt", disable=not progress):
        try:
            wav = load_audio(utt.audio, model.sample_rate)
            output.add(align_one(model, wav, ws, utt.id).to_json() + "\n")
        except (ValueError, OSError) as exc:
            failures.append(f"{utt.id}: {exc}")
    return output.finish(), failures  # nothing aligned: no output file (the CLI reports the failure)
