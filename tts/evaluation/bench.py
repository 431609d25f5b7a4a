"""``ucodec bench tts``: generation speed of three LM layouts over the same audio, same code, same widths.

- **(a) global-local 5 Hz × 32** — ours: per 200 ms frame one global step and 32 local steps.
- **(b) global-local 50 Hz × 3** — the same architecture at the high frame rate the paper compares against: per
  20 ms frame one global step and 3 local steps.
- **(c) flat AR, 160 tokens/s** — the global Transformer alone over all tokens of the 5 Hz codec, one token a step.
- **(aG)**, e.g. ``a1``, ``a2``, ``a4``: layout (a) with G RVQ layers a local step whatever the config says, so that
  the ``local_levels_per_step`` lever is measured side by side in one run.
- **(fK)**, e.g. ``f4``: layout (a) modelling only the codec's first K levels (``model.num_codebooks`` = K, for a
  model that decodes only those): one global step and K / G local steps a frame.

Every contestant has random weights and forced lengths (END is suppressed until the target length, guards off),
so each produces exactly ``seconds`` of audio tokens after a realistic prefix (``text_symbols`` text ids and a
``prompt_seconds`` voice prompt). Runs are interleaved (round r runs every contestant and batch size once, in an
order rotated by r) and the median of the timed rounds is reported. "First chunk" is the time until the first
200 ms of audio tokens exist (1 frame of (a), 10 of (b), 32 tokens of (c)), prefill included; for (a) the
codec's streaming decode of that frame is measured too. Peak RSS comes from a fresh subprocess per contestant
(``python -m tts.evaluation.bench probe``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

from tts.batch import build_prefix
from tts.config import TTSConfig
from tts.generate import generate_frames
from tts.model import TTSModel
from tts.sampling import NoiseSource, SamplingParams, sample
from tts.transformer import KVCache, StepDecoder, Transformer

LAYOUTS = {"a": "global-local 5 Hz x 32", "b": "global-local 50 Hz x 3", "c": "flat AR 160 tok/s", "f": "first levels"}
CHUNK_SECONDS = 0.2  # the "first chunk" is this much audio for every layout


@dataclass(frozen=True)
class Workload:
    """What one run generates."""

    seconds: float = 10.0  # audio to generate
    text_symbols: int = 150  # text prefix length (about 10 s of speech in phonemes)
    prompt_seconds: float = 3.0  # voice prompt in the prefix
    batch: int = 1


def check_layout(key: str) -> str:
    """``key`` if it names a layout (``a``, ``b``, ``c``, ``aG`` or ``fK`` with G, K >= 1), else ValueError."""
    if key in ("a", "b", "c") or (key[:1] in ("a", "f") and key[1:].isdigit() and int(key[1:]) >= 1):
        return key
    raise ValueError(
        f"unknown layout {key!r}: use a, b, c, aG (layout a with G layers a local step, e.g. a2) or fK (layout a "
        "modelling the codec's first K levels, e.g. f4)"
    )


def layout_config(cfg: TTSConfig, key: str) -> TTSConfig:
    """The model config of layout ``key`` derived from the base (5 Hz × Q) config; (b) takes one layer a local
    step, as the high-frame-rate models it stands for do; (aG) takes G; (fK) models the first K levels (with the
    per-level sampling values of those levels)."""
    if key == "b":
        return dataclasses.replace(
            cfg, **_first_levels(cfg, 3), frame_rate=cfg.frame_rate * 10, local_levels_per_step=1
        )
    if key[0] == "f":
        k = int(key[1:])
        if k > cfg.num_codebooks:
            raise ValueError(f"layout {key}: the base config models only {cfg.num_codebooks} levels")
        return dataclasses.replace(cfg, **_first_levels(cfg, k))
    if key[1:].isdigit():
        return dataclasses.replace(cfg, local_levels_per_step=int(key[1:]))  # validated by the config
    return cfg


def _first_levels(cfg: TTSConfig, k: int) -> dict:
    """The config fields of a model of ``k`` levels: the per-level sampling values and the level counts (content,
    decoded) of the first ``k`` (a base config's ``content_levels: 4`` does not fit the 3 levels of layout b)."""
    sampling = {n: getattr(cfg.sampling, n) for n in ("temperature", "top_k", "top_p")}
    sampling = {n: v[:k] if isinstance(v, (list, tuple)) else v for n, v in sampling.items()}
    return dict(
        num_codebooks=k,
        content_levels=min(cfg.content_levels, k),
        decode_levels=min(cfg.decode_levels, k),
        sampling=dataclasses.replace(cfg.sampling, **sampling),
    )


def layout_name(cfg: TTSConfig, key: str) -> str:
    """``LAYOUTS[key]`` for the layout's own config ``cfg`` (:func:`layout_config`), naming the layers per local
    step of (a) when it is more than one or forced."""
    g = cfg.local_levels_per_step
    name = LAYOUTS[key[0]]
    if key[0] == "f":
        name = f"global-local 5 Hz x {cfg.num_codebooks} (first levels only"
        return name + (f", {g} layers a local step)" if g > 1 else ")")
    if key[0] == "a" and (g > 1 or key != "a"):
        name += f" ({g} layer{'s' if g > 1 else ''} a local step)"
    return name


class FlatAR(nn.Module):
    """Layout (c): the global Transformer over flattened tokens ``q * V + code`` (the HY_Tokenizer layout)."""

    def __init__(self, cfg: TTSConfig) -> None:
        super().__init__()
        self.cfg = cfg
        vocab = cfg.text_vocab_size + cfg.num_codebooks * cfg.codebook_size + 1  # text, codes, END
        self.embed = nn.Embedding(vocab, cfg.global_model.d_model)
        self.transformer = Transformer(cfg.global_model)
        self.head = nn.Linear(cfg.global_model.d_model, cfg.num_codebooks * cfg.codebook_size + 1, bias=False)


class Contestant:
    """One layout with its model built; :meth:`run` generates a :class:`Workload` and times it."""

    def __init__(self, key: str, cfg: TTSConfig, params: dict) -> None:
        self.key = check_layout(key)
        self.cfg = layout_config(cfg, key)
        self.name = layout_name(self.cfg, key)
        torch.manual_seed(0)
        self.model = (FlatAR(self.cfg) if key == "c" else TTSModel(self.cfg)).eval()
        self.params = params
        guard = dataclasses.replace(self.cfg.sampling, max_repeat_frames=0, max_silence_frames=0)
        self.guard = guard

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def steps_per_second(self) -> tuple[float, float]:
        """(global steps, local steps) per second of audio."""
        if self.key == "c":
            return self.cfg.tokens_per_second, 0.0
        return self.cfg.frame_rate, self.cfg.frame_rate * self.cfg.local_steps

    @torch.inference_mode()
    def run(self, work: Workload) -> tuple[float, float, float]:
        """Generate ``work`` once; returns (total wall seconds, seconds until the first 200 ms chunk, process CPU
        seconds)."""
        cpu = time.process_time()
        total, first = self._run_flat(work) if self.key == "c" else self._run_frames(work)
        return total, first, time.process_time() - cpu

    def _run_frames(self, work: Workload) -> tuple[float, float]:
        cfg = self.cfg
        frames = max(1, round(work.seconds * cfg.frame_rate))
        chunk = max(1, round(CHUNK_SECONDS * cfg.frame_rate))
        prompt_frames = round(work.prompt_seconds * cfg.frame_rate)
        g = torch.Generator().manual_seed(0)
        text = [torch.randint(3, cfg.text_vocab_size, (work.text_symbols,), generator=g) for _ in range(work.batch)]
        prompts = [torch.randint(0, cfg.codebook_size, (cfg.num_codebooks, prompt_frames), generator=g)] * work.batch
        params = SamplingParams.create(cfg.num_codebooks, cfg.sampling, **self.params)
        start = time.perf_counter()
        prefix = build_prefix(
            text, prompts, cfg.num_codebooks, frame_stride=cfg.frame_position_stride, aligned_text=cfg.aligned_text
        )
        first = None
        for _ in generate_frames(
            self.model,
            prefix,
            params,
            list(range(work.batch)),
            [frames] * work.batch,
            [frames] * work.batch,
            guard=self.guard,
            chunk_frames=chunk,
        ):
            first = first if first is not None else time.perf_counter() - start
        return time.perf_counter() - start, first

    def _run_flat(self, work: Workload) -> tuple[float, float]:
        cfg, model = self.cfg, self.model
        tokens = max(1, round(work.seconds * cfg.tokens_per_second))
        chunk = max(1, round(CHUNK_SECONDS * cfg.tokens_per_second))
        prompt_tokens = round(work.prompt_seconds * cfg.tokens_per_second)
        g = torch.Generator().manual_seed(0)
        prefix = torch.randint(
            0, model.embed.num_embeddings, (work.batch, work.text_symbols + prompt_tokens), generator=g
        )
        params = SamplingParams.create(cfg.num_codebooks, cfg.sampling, **self.params)  # tokens use layer 0's
        noise = NoiseSource(range(work.batch)) if not params.is_greedy else None
        start = time.perf_counter()
        cache = KVCache.allocate(cfg.global_model, work.batch, prefix.shape[1] + tokens)
        hidden = model.transformer(model.embed(prefix), cache=cache)[:, -1]
        decoder = StepDecoder(model.transformer, cache)
        first, position = None, prefix.shape[1]
        for t in range(tokens):
            logits = model.head(hidden)  # [B, Q * V + 1]
            gumbel = noise.gumbel(logits.shape[-1]) if noise is not None else None
            token = sample(logits, params.temperature[0], params.top_k[0], params.top_p[0], gumbel)
            if (t + 1) % chunk == 0:
                token.tolist()  # the per-chunk host read a streaming consumer does
                first = first if first is not None else time.perf_counter() - start
            if t + 1 < tokens:
                hidden = decoder.step(model.embed(token + cfg.text_vocab_size), position)
                position += 1
        return time.perf_counter() - start, first if first is not None else time.perf_counter() - start


@dataclass(frozen=True)
class SpeedRow:
    """Median timings of one (layout, batch) over the timed rounds."""

    key: str
    name: str
    batch: int
    seconds: float  # audio per sequence
    num_parameters: int
    global_steps: float  # per second of audio
    local_steps: float  # per second of audio
    total_s: float  # median wall time of one run
    first_chunk_s: float  # median time to the first 200 ms chunk (prefill included)
    cpu_s: float  # median process CPU time of one run (all threads)
    rounds: tuple[float, ...]

    @property
    def per_audio_second(self) -> float:
        """Wall seconds per second of audio of one sequence (batch rows share the time)."""
        return self.total_s / self.seconds

    @property
    def rtf(self) -> float:
        """Wall time / total audio generated (all batch rows)."""
        return self.total_s / (self.seconds * self.batch)


def time_interleaved(
    contestants: list[Contestant], batches: list[int], work: Workload, repeats: int, warmup: int, progress: bool = True
) -> list[SpeedRow]:
    """Time every (contestant, batch), interleaved round by round; medians of the timed rounds."""
    from tqdm import tqdm

    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    jobs = [(c, b) for c in contestants for b in batches]
    runs: list[list[tuple[float, float, float]]] = [[] for _ in jobs]
    with tqdm(total=(warmup + repeats) * len(jobs), desc="bench tts", unit="run", disable=not progress) as bar:
        for r in range(warmup + repeats):
            shift = r % len(jobs)
            for i in list(range(len(jobs)))[shift:] + list(range(len(jobs)))[:shift]:
                contestant, batch = jobs[i]
                bar.set_postfix_str(f"{contestant.key} b{batch}")
                measured = contestant.run(dataclasses.replace(work, batch=batch))
                if r >= warmup:
                    runs[i].append(measured)
                bar.update()
    rows = []
    for (contestant, batch), timings in zip(jobs, runs, strict=True):
        g, loc = contestant.steps_per_second()
        totals = tuple(t for t, _, _ in timings)
        rows.append(
            SpeedRow(
                key=contestant.key,
                name=contestant.name,
                batch=batch,
                seconds=work.seconds,
                num_parameters=contestant.num_parameters,
                global_steps=g,
                local_steps=loc,
                total_s=statistics.median(totals),
                first_chunk_s=statistics.median(f for _, f, _ in timings),
                cpu_s=statistics.median(c for _, _, c in timings),
                rounds=totals,
            )
        )
    return rows


@torch.inference_mode()
def codec_stream_cost(codec, seconds: float, repeats: int = 3) -> tuple[float, float]:
    """(seconds to stream-decode ``seconds`` of codes frame by frame, seconds for the first frame alone)."""
    frames = max(1, round(seconds * codec.frame_rate))
    codes = torch.randint(0, codec.codebook_size, (1, codec.num_codebooks, frames))
    totals, firsts = [], []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        first = None
        for _chunk in codec.decode_stream(codes, chunk_frames=1):
            first = first if first is not None else time.perf_counter() - start
        totals.append(time.perf_counter() - start)
        firsts.append(first)
    return statistics.median(totals[1:]), statistics.median(firsts[1:])


@dataclass(frozen=True)
class FrameProfile:
    """Where the time of one (a) frame goes (medians of process CPU time, milliseconds, batch 1). CPU time, not
    wall time: on a shared machine other processes stretch wall times at random, which would blur a breakdown."""

    global_step_ms: float
    local_frame_ms: float  # one frame's local steps including sampling
    local_greedy_ms: float  # the same without sampling (transformer + heads)
    num_codebooks: int
    local_steps: int
    frame_rate: float


@torch.inference_mode()
def profile_frame(model: TTSModel, params: SamplingParams, context: int = 200, repeats: int = 9) -> FrameProfile:
    """Median cost of one global step and of one local frame (with and without sampling) for ``model``."""
    from tts.generate import global_step, local_frame

    cfg = model.config
    q = cfg.num_codebooks
    gcache = KVCache.allocate(cfg.global_model, 1, context + 1)
    model.global_model(torch.randn(1, context, cfg.global_model.d_model), cache=gcache)
    gdecoder = StepDecoder(model.global_model, gcache)
    ldecoder = StepDecoder(model.local.transformer, KVCache.allocate(cfg.local_model, 1, cfg.local_steps))
    hidden = torch.randn(1, cfg.global_model.d_model)
    allow = torch.ones(1, dtype=torch.bool)
    frame = torch.zeros(1, q, dtype=torch.long)
    gumbel = NoiseSource([0]).gumbel(q, cfg.head_vocab)
    greedy = SamplingParams.greedy(q)

    def median_ms(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.process_time()
            fn()
            times.append((time.process_time() - t0) * 1e3)
        return statistics.median(times)

    return FrameProfile(
        global_step_ms=median_ms(lambda: global_step(model, frame, torch.tensor([context]), gdecoder, context)),
        local_frame_ms=median_ms(lambda: local_frame(model, hidden, ldecoder, params, gumbel, allow)),
        local_greedy_ms=median_ms(lambda: local_frame(model, hidden, ldecoder, greedy, None, allow)),
        num_codebooks=q,
        local_steps=cfg.local_steps,
        frame_rate=cfg.frame_rate,
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process (the evaluation toolkit's definition, which avoids inheriting the
    parent's peak across fork + exec)."""
    from codec.evaluation.bench_probe import peak_rss_mb as peak

    return peak()


def probe_memory(key: str, config: str, batch: int, work: Workload, threads: int, timeout: float = 1800) -> dict:
    """Peak RSS of one contestant generating ``work`` in a fresh ``python -m tts.evaluation.bench probe`` process."""
    spec = {"key": key, "config": config, "batch": batch, "threads": threads, "work": dataclasses.asdict(work)}
    command = [sys.executable, "-m", "tts.evaluation.bench", "probe", json.dumps(spec)]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"memory probe failed ({proc.returncode}): {' '.join(command)}\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _probe_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    torch.set_num_threads(spec["threads"])
    baseline = peak_rss_mb()
    contestant = Contestant(spec["key"], TTSConfig.load(spec["config"]), {})
    contestant.run(dataclasses.replace(Workload(**spec["work"]), batch=spec["batch"]))
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak_rss_mb()}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "probe":
        _probe_main(sys.argv[2])
    else:
        sys.exit("usage: python -m tts.evaluation.bench probe '<json spec>' (run by `ucodec bench tts`)")
