"""Which RVQ layers keep the TTS model from reading: a teacher-forced layer sweep (``ucodec eval tts-oracle``).

``ucodec eval tts`` says *that* a model babbles; this diagnostic says *where*. For each test line the model reads
the line (with the same same-speaker, transcribed prompt as ``eval tts``) while the first ``K`` RVQ layers of
every frame are taken from the real recording's codes (``codec.encode``) and the other ``Q - K`` layers are
sampled by the local model as usual, for exactly as many frames as the recording has (END is never chosen). The
global model sees every earlier frame whole (forced + sampled layers), as in generation. Whisper's WER per ``K``:

- ``K = Q``: the codec's own resynthesis, the ceiling of any LM on these codes;
- ``K = 0``: free generation, only the length is the recording's;
- between: how much of the gap the recording's first ``K`` layers close. If forcing layer 0 alone brings the WER
  near the ceiling, the local model does its part and the global model's choice of layer 0 is what fails; if WER
  stays high, the upper layers (the local model) fail too, or the words live deeper than layer 0 in this codec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tts.aligned_text import frame_text_targets, frontend_word_starts
from tts.batch import build_prefix
from tts.generate import PointerState, global_step, local_frame
from tts.model import TTSModel
from tts.sampling import NoiseSource, SamplingParams
from tts.transformer import KVCache, StepDecoder


@torch.inference_mode()
def forced_generate(
    model: TTSModel,
    text_ids: Sequence[int],
    prompt: torch.Tensor | None,
    forced: torch.Tensor,
    num_frames: int,
    params: SamplingParams,
    seed: int = 0,
    target_text_length: int | None = None,
    space_id: int | None = None,
    pointers: tuple[Sequence[int], Sequence[int]] | None = None,
) -> torch.Tensor:
    """Generate ``num_frames`` frames whose first ``K`` layers are given.

    Args:
        text_ids: (prompt transcript +) target text symbols, without BOS/SEP.
        prompt: voice prompt codes ``[Q, Fp]`` or None.
        forced: ``[K, F]`` codes of the first ``K`` layers (``K`` may be 0), ``F >= num_frames``.
        num_frames: frames to generate.
        params: sampling of the free layers (per layer, as in generation).
        seed: the Gumbel noise seed.
        target_text_length: symbols of the target text alone (default: all of ``text_ids``); sets the frame
            positions exactly as in :meth:`tts.TTS.synthesize`.
        space_id: the frontend's word separator (a model with aligned text moves its word pointer over words).
        pointers: ``(words, advances)`` per frame (:func:`tts.aligned_text.frame_text_targets` of the recording's
            word times) for a model with aligned text: the pointer follows the recording instead of the model.

    Returns:
        ``[Q, num_frames]`` codes; rows ``< K`` equal ``forced[:, :num_frames]``.

    Raises:
        ValueError: ``forced`` has more layers than the model or fewer frames than ``num_frames``.
    """
    cfg = model.config
    q = cfg.num_codebooks
    k = forced.shape[0]
    if forced.dim() != 2 or k > q or (k and forced.shape[1] < num_frames) or num_frames < 1:
        raise ValueError(f"forced codes {tuple(forced.shape)} do not fit {q} layers x {num_frames} frames")
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    lengths = None if target_text_length is None else [target_text_length]
    prefix = build_prefix(
        [list(text_ids)], [prompt], q, lengths, cfg.frame_position_stride, cfg.aligned_text, space_id
    ).to(device)
    s = prefix.tokens.shape[1]
    global_decoder = StepDecoder(
        model.global_model, KVCache.allocate(cfg.global_model, 1, s + num_frames, dtype, device)
    )
    local_decoder = StepDecoder(
        model.local.transformer, KVCache.allocate(cfg.local_model, 1, cfg.local_steps, dtype, device)
    )
    noise = None if params.is_greedy else NoiseSource([seed], device)
    forced = forced.to(device)
    never_end = torch.zeros(1, dtype=torch.bool, device=device)  # the length is the recording's

    x = model.embed(prefix.tokens, prefix.codes, prefix.is_frame)
    hidden = model.global_model(x, positions=prefix.positions, cache=global_decoder.cache, start=0)[:, -1]
    pointer = PointerState(model, prefix, noise) if model.pointer is not None else None
    frames, extra = [], None
    for t in range(num_frames):
        if t > 0:
            pos = prefix.next_positions + prefix.frame_step * (t - 1)
            hidden = global_step(model, frames[-1], pos, global_decoder, s + t - 1, extra)
        context = hidden
        if pointer is not None and pointers is not None:  # the pointer at the recording's word times
            step = torch.tensor([pointers[1][t]], device=device)
            extra, local_add = pointer.place(torch.tensor([pointers[0][t]], device=device), step)
            context = hidden + local_add
        elif pointer is not None:  # the word pointer moves as the model says
            extra, local_add = pointer.advance(hidden)
            context = hidden + local_add
        gumbel = noise.gumbel(q, cfg.head_vocab) if noise is not None else None
        frames.append(local_frame(model, context, local_decoder, params, gumbel, never_end, forced[None, :, t]))
    return torch.stack(frames, dim=2)[0].cpu()  # [Q, F]


@dataclass(frozen=True)
class OracleRow:
    """Corpus-level scores of one forced depth."""

    forced_layers: int
    word_errors: int
    words: int
    char_errors: int
    chars: int

    @property
    def wer(self) -> float:
        return self.word_errors / max(self.words, 1)

    @property
    def cer(self) -> float:
        return self.char_errors / max(self.chars, 1)


def parse_layers(text: str, num_codebooks: int) -> tuple[int, ...]:
    """``"0,1,4,32"`` → sorted unique depths in ``0..num_codebooks``.

    Raises:
        ValueError: no depth, a part that is not an integer, or one out of range.
    """
    from codec.evaluation.codec_eval import parse_depths

    if not text.replace(",", "").strip():
        raise ValueError("--layers: give at least one depth, e.g. 0,1,4,32")
    return parse_depths(text.replace(" ", ""), num_codebooks, minimum=0, option="--layers")


def report(rows: Sequence[OracleRow], recordings: OracleRow | None, lines: int, model_label: str, command: str) -> str:
    """Markdown report of a sweep (see the module docstring for how to read it)."""
    out = [
        f"# Teacher-forced layer sweep: {model_label}",
        "",
        f"- Command: `{command}`",
        f"- Lines: {lines}; the first K RVQ layers of every frame come from the recording, the rest are sampled; "
        "the length is the recording's. K = all layers is the codec's own resynthesis.",
        "",
        "| forced layers K | WER | CER |",
        "|---:|---:|---:|",
    ]
    if recordings is not None:
        out.append(f"| the recordings | {100 * recordings.wer:.1f} % | {100 * recordings.cer:.1f} % |")
    for row in rows:
        out.append(f"| {row.forced_layers} | {100 * row.wer:.1f} % | {100 * row.cer:.1f} % |")
    return "\n".join(out) + "\n"


def sweep(
    tts,
    manifest,
    depths: Sequence[int],
    scorer,
    params: SamplingParams,
    *,
    limit: int | None = None,
    seed: int = 0,
    max_prompt_seconds: float = 10.0,
    recordings: bool = True,
    progress: bool = True,
    word_times: dict[str, list[float]] | None = None,
) -> tuple[list[OracleRow], OracleRow | None, int]:
    """Run the sweep over the first ``limit`` usable lines of ``manifest`` → (rows per depth, recordings, lines).

    Args:
        tts: a :class:`tts.TTS` (model, frontend, codec).
        depths: forced layer counts ``K`` (``0..Q``).
        scorer: a loaded :class:`codec.evaluation.scoring.Scorer` with ``wer``.
        params: sampling of the free layers.
        recordings: also score the recordings themselves (Whisper's floor on these lines).
        word_times: ``{id: word starts}`` (``ucodec align``): a model with aligned text then reads each line with
            its pointer at the recording's word times; lines without times let the model move it.

    Raises:
        ValueError: no line has a same-speaker prompt, or ``limit < 1``.
    """
    from tqdm import tqdm

    from codec.audio import load_audio
    from codec.manifest import read_manifest
    from tts.evaluation.evaluate import choose_prompts

    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    utterances = read_manifest(manifest)
    prompts = choose_prompts(utterances)
    usable = [u for u in utterances if u.id in prompts][:limit]
    if not usable:
        raise ValueError(f"{manifest}: no utterance has another utterance of the same speaker to use as a prompt")
    rate, q = tts.sample_rate, tts.config.num_codebooks
    space = [tts.frontend.ids[" "]] if " " in tts.frontend.ids else []
    totals = {k: [0, 0, 0, 0] for k in depths}
    real = [0, 0, 0, 0]

    def add(total: list[int], wav: torch.Tensor, text: str) -> None:
        s = scorer.score(wav, rate, text=text)
        for i, v in enumerate((s.word_errors, s.words, s.char_errors, s.chars)):
            total[i] += v

    bar = tqdm(
        total=len(usable) * len(depths), desc="eval tts-oracle", unit="synth", disable=not progress, dynamic_ncols=True
    )
    for utt in usable:
        wav = load_audio(utt.audio, rate)  # [1, T]
        prompt_wav = load_audio(prompts[utt.id].audio, rate)[:, : int(max_prompt_seconds * rate)]
        with torch.inference_mode():
            codes = tts.codec.encode(wav[None].to(tts.codec.device))[0, :q].cpu()  # [Q, F]: the model's levels
        prompt_codes, prompt_text = tts.prepare_prompt(prompt_wav, prompts[utt.id].text)
        target = tts.frontend.encode(utt.text)
        ids = (tts.frontend.encode(prompt_text) + space if prompt_text else []) + target
        pointers = None
        if word_times is not None and tts.config.aligned_text and utt.id in word_times:
            starts = frontend_word_starts(target, tts.frontend.ids.get(" "), utt.text, word_times[utt.id])
            pointers = frame_text_targets(starts, codes.shape[1], tts.config.frame_rate, tts.config.advance_classes)
        if recordings:
            add(real, wav, utt.text)
        for k in depths:
            if k == q:
                out = codes
            else:
                out = forced_generate(
                    tts.model, ids, prompt_codes, codes[:k], codes.shape[1], params, seed, len(target),
                    tts.frontend.ids.get(" "), pointers,
                )  # fmt: skip
            with torch.inference_mode():
                audio = tts.decode(out[None], prompt_codes)  # [1, T]
            add(totals[k], audio, utt.text)
            bar.update(1)
    bar.close()
    rows = [OracleRow(k, *totals[k]) for k in depths]
    return rows, (OracleRow(-1, *real) if recordings else None), len(usable)
