"""The TTS facade: text (+ optional voice prompt) in, 16 kHz audio out — offline, batched, or streamed.

``TTS.from_pretrained(dir | "default")`` loads a release directory::

    config.json          kind "tts", format_version, weights SHA-256, the codec it was trained with, the config
    model.safetensors    the LM weights
    frontend.json        the text symbol table (+ sentencepiece.model for that frontend)
    codec/               the codec release (config.json + model.safetensors), bundled so a release is complete

Long text is split into sentences; every sentence is synthesized with the same prompt (sentence i with seed
``seed + i``) and the pieces are joined with short cross-fades. ``stream`` yields audio as frames are generated,
decoded by the codec's streaming decoder; its chunks concatenate to what ``synthesize`` returns. ``stream`` also
takes the text itself as a stream of pieces (as a language model emits them) and starts speaking a sentence as
soon as the next one has begun, before the text is complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

from codec.model import Codec
from codec.release import CONFIG_NAME, WEIGHTS_NAME, load_release, load_weights, resolve_release, save_release
from tts.batch import build_prefix
from tts.config import FORMAT_VERSION, TTSConfig, codec_mismatches
from tts.crossfade import CrossFader, crossfade_join
from tts.frontend import TextFrontend
from tts.generate import generate, generate_frames, length_limits
from tts.model import TTSModel
from tts.normalize import complete_parts
from tts.sampling import SamplingParams
from tts.voice import PromptAudio, reference_codes, shape_prompt, voice_from_meta, voice_to_meta

ALIASES = {"default": "tts-small"}
CODEC_DIR = "codec"
CROSSFADE_SECONDS = 0.05  # sentence joins


def _same_tokens(root: Path, meta: dict, codec: Codec) -> bool:
    """Whether ``codec`` makes a TTS release's tokens (its recorded ``tokens_id``, else its bundled codec's)."""
    want = (meta.get("codec") or {}).get("tokens_id")
    if want is None and (root / CODEC_DIR / CONFIG_NAME).is_file():
        want = Codec.from_pretrained(root / CODEC_DIR).tokens_id()
    return want is not None and codec.tokens_id() == want


class TTS:
    """Text-to-speech with the global-local LM and the 5 Hz codec.

    Args:
        model: the LM (put in eval mode here).
        frontend: text → ids, with the symbol table the model was trained with.
        codec: decodes (and encodes prompts); its token layout must match the model's.
        codec_dir: the codec's release directory, when known (bundled by :meth:`save_pretrained` byte for byte).
    """

    def __init__(self, model: TTSModel, frontend: TextFrontend, codec: Codec, codec_dir: Path | None = None) -> None:
        cfg = model.config
        mismatch = codec_mismatches(cfg, codec)
        if mismatch:
            raise ValueError(f"the TTS model and the codec disagree on {mismatch} (name, model, codec)")
        if frontend.vocab_size > cfg.text_vocab_size:
            raise ValueError(f"the frontend has {frontend.vocab_size} symbols, the model only {cfg.text_vocab_size}")
        self.model, self.frontend, self.codec = model.eval(), frontend, codec.eval()
        self.codec_dir = codec_dir
        self.codec_release_id = codec.release_id
        self.decode_levels = cfg.decode_levels  # the codec decodes the first N generated levels (0 = all)
        # codes [Qc, F] (all the codec's levels) of the release's own voice: what a voice-conditioned codec speaks in
        # without a prompt
        self.voice: torch.Tensor | None = None
        self.voice_source = ""  # where the own voice came from (a file name), recorded in the release
        self.compile = False  # torch.compile the generation step functions (first call compiles: minutes on CPU)
        self._silence: torch.Tensor | None = None

    @property
    def config(self) -> TTSConfig:
        return self.model.config

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: TTSConfig, codec: Codec, frontend: TextFrontend | None = None) -> TTS:
        """A randomly initialised model (tests, benchmarks, the start of training)."""
        return cls(TTSModel(config), frontend or TextFrontend(config.frontend), codec)

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str | os.PathLike = "default", device: str | torch.device = "cpu", codec: Codec | None = None
    ) -> TTS:
        """Load a release directory or a shipped name (``"default"`` = ``models/tts-small``).

        Args:
            codec: use this codec instead of the bundled one (it must be the same release).

        Raises:
            FileNotFoundError: no such directory / shipped model, or a file of the release is missing.
            ValueError: corrupt or incompatible release, or a codec other than the one the model was trained with.
        """
        try:
            root = resolve_release(name_or_dir, ALIASES)
        except FileNotFoundError as exc:
            hint = ""
            if str(name_or_dir) == "default":
                hint = " (the default TTS model models/tts-small is not installed; pass --model DIR)"
            raise FileNotFoundError(f"{exc}{hint}") from None
        rel = load_release(root, "tts", FORMAT_VERSION)
        config = TTSConfig.from_dict(rel.config, where=f"{root}/config.json")
        model = TTSModel(config)
        load_weights(model, rel)
        frontend = TextFrontend.load(root, config.frontend)
        expected = (rel.meta.get("codec") or {}).get("release_id")
        codec_dir = None
        if codec is None:
            codec_dir = root / CODEC_DIR
            if not (codec_dir / CONFIG_NAME).is_file():
                raise FileNotFoundError(f"{root}: the bundled codec ({CODEC_DIR}/) is missing")
            codec = Codec.from_pretrained(codec_dir, device=device)
        if expected is not None and codec.release_id != expected and not _same_tokens(root, rel.meta, codec):
            raise ValueError(
                f"{root}: this TTS model was trained with codec {expected}, not {codec.release_id}; "
                "tokens of another codec mean nothing to it (one that changed only its decoder is accepted)"
            )
        tts = cls(model.to(device), frontend, codec.to(device), codec_dir)
        tts.voice = voice_from_meta(rel.meta, codec.num_codebooks, config.codebook_size, f"{root}/{CONFIG_NAME}")
        tts.voice_source = str((rel.meta.get("voice") or {}).get("source", ""))
        return tts

    def save_pretrained(self, out_dir: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write a complete release directory (weights, config, frontend, bundled codec); returns its path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.frontend.save(out)
        target = out / CODEC_DIR
        if self.codec_dir is not None and Path(self.codec_dir).resolve() != target.resolve():
            target.mkdir(exist_ok=True)
            for name in (WEIGHTS_NAME, CONFIG_NAME):  # copied byte for byte: the release id stays the same
                shutil.copyfile(Path(self.codec_dir) / name, target / name)
        elif self.codec_dir is None:
            self.codec.save_pretrained(target)
            self.codec_release_id = Codec.from_pretrained(target).release_id
            self.codec_dir = target
        extra = {"codec": {"release_id": self.codec_release_id, "name": self.codec.config.name}}
        extra["codec"]["tokens_id"] = self.codec.tokens_id()
        if self.voice is not None:
            extra["voice"] = voice_to_meta(self.voice, self.voice_source)
        return save_release(
            out, "tts", FORMAT_VERSION, self.config.to_dict(), self.model.state_dict(), dtype=dtype, extra=extra
        )

    # ------------------------------------------------------------------------------------------ inputs
    def prompt_codes(self, prompt_wav: PromptAudio, prompt_text: str | None = None) -> torch.Tensor | None:
        """Codes ``[Q, F]`` of a prompt (audio ``[T]``/``[1, T]`` at ``sample_rate`` or a file path; None → None),
        cut the way :meth:`prepare_prompt` cuts it for ``prompt_text``."""
        return self.prepare_prompt(prompt_wav, prompt_text)[0]

    def prepare_prompt(
        self, prompt_wav: PromptAudio, prompt_text: str | None
    ) -> tuple[torch.Tensor | None, str | None]:
        """Shape a voice prompt like the prompts the model was trained on (:func:`tts.voice.shape_prompt`) and
        encode it → ``(codes [Qc, F] | None, transcript)``: all the codec's levels (the LM reads its first Q, a
        voice-conditioned decoder all of them)."""
        wav, prompt_text = shape_prompt(prompt_wav, prompt_text, self.config.sampling, self.sample_rate)
        if wav is None:
            return None, prompt_text
        return self.codec.encode(wav.to(self.codec.device))[0].cpu(), prompt_text

    def _sentences(
        self, text: str, prompt_text: str | None, allow_empty: bool = False
    ) -> tuple[list[list[int]], list[int]]:
        """Ids per sentence (prompt transcript prepended) and the target-only symbol counts (none for text with
        nothing speakable when ``allow_empty``, else ValueError)."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        sentences = self.frontend.split(text, allow_empty)
        ids = self.frontend.encode_batch(sentences, normalized=True)
        lengths = [len(i) for i in ids]
        if prompt_text:
            space = [self.frontend.ids[" "]] if " " in self.frontend.ids else []
            head = self.frontend.encode(prompt_text) + space
            ids = [head + i for i in ids]
        return ids, lengths

    def _silence_codes(self) -> torch.Tensor:
        if self._silence is None:
            zeros = torch.zeros(1, 1, self.codec.hop_length, device=self.codec.device)
            self._silence = self.codec.encode(zeros)[0, : self.config.num_codebooks, 0].cpu()
        return self._silence

    def _settings(self, temperature, top_k, top_p, max_seconds) -> tuple[SamplingParams, float]:
        params = SamplingParams.create(self.config.num_codebooks, self.config.sampling, temperature, top_k, top_p)
        limit = self.config.sampling.max_seconds if max_seconds is None else max_seconds
        if limit <= 0:
            raise ValueError(f"max_seconds must be > 0, got {limit}")
        return params, limit

    def _generate(self, ids, lengths, prompts, params, max_seconds, seeds, **kwargs):
        cfg, space = self.config, self.frontend.ids.get(" ")
        prefix = build_prefix(
            ids, prompts, cfg.num_codebooks, lengths, cfg.frame_position_stride, cfg.aligned_text, space
        )
        low, high = length_limits(lengths, self.config.sampling, self.config.frame_rate, max_seconds)
        options = dict(params=params, seeds=seeds, min_frames=low, max_frames=high, compile=self.compile)
        return prefix, dict(options, silence_codes=self._silence_codes(), **kwargs)

    # ------------------------------------------------------------------------------------------ synthesis
    @torch.inference_mode()
    def synthesize(
        self,
        text: str,
        prompt_wav: PromptAudio = None,
        prompt_text: str | None = None,
        *,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        max_seconds: float | None = None,
        seed: int = 0,
        batch_size: int = 8,
    ) -> torch.Tensor:
        """Speech for ``text`` (in the voice of ``prompt_wav``) → wav ``[1, T]`` at :attr:`sample_rate`.

        Args:
            prompt_wav: voice prompt (tensor at ``sample_rate`` or a path), or None for the model's own voice.
            prompt_text: the prompt's transcript (optional; helps the model align the prompt).
            temperature, top_k, top_p: sampling (None = the model's defaults; per-layer lists accepted).
            max_seconds: longest allowed sentence.
            seed: sentence i uses seed ``seed + i``.
            batch_size: sentences generated together.
        """
        return self.synthesize_batch(
            [text],
            prompt_wav,
            prompt_text,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            max_seconds=max_seconds,
            seed=seed,
            batch_size=batch_size,
        )[0]

    @torch.inference_mode()
    def synthesize_batch(
        self,
        texts: Sequence[str],
        prompt_wav: PromptAudio | Sequence[PromptAudio] = None,
        prompt_text: str | Sequence[str | None] | None = None,
        *,
        temperature=None,
        top_k=None,
        top_p=None,
        max_seconds: float | None = None,
        seed: int = 0,
        batch_size: int = 8,
    ) -> list[torch.Tensor]:
        """Several texts at once (sentences of all texts are batched together). Text j uses seed ``seed + j``, so
        its result equals ``synthesize(texts[j], ..., seed=seed + j)``. Prompts: one for all, or one per text."""
        if isinstance(texts, str) or not texts:
            raise ValueError("synthesize_batch needs a non-empty list of texts")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        prompts = list(prompt_wav) if isinstance(prompt_wav, (list, tuple)) else [prompt_wav] * len(texts)
        transcripts = list(prompt_text) if isinstance(prompt_text, (list, tuple)) else [prompt_text] * len(texts)
        if len(prompts) != len(texts) or len(transcripts) != len(texts):
            raise ValueError(f"{len(texts)} texts need one prompt/transcript each, or one for all")
        params, limit = self._settings(temperature, top_k, top_p, max_seconds)
        jobs = []  # (text index, ids, target length, prompt codes, seed)
        cache: dict[tuple[int, str | None], tuple[torch.Tensor | None, str | None]] = {}
        for j, (text, prompt, transcript) in enumerate(zip(texts, prompts, transcripts, strict=True)):
            if (id(prompt), transcript) not in cache:
                cache[id(prompt), transcript] = self.prepare_prompt(prompt, transcript)
            codes, transcript = cache[id(prompt), transcript]
            ids, lengths = self._sentences(text, transcript)
            jobs += [(j, i, n, codes, seed + j + k) for k, (i, n) in enumerate(zip(ids, lengths, strict=True))]
        pieces: list[list[torch.Tensor]] = [[] for _ in texts]
        for start in range(0, len(jobs), batch_size):
            group = jobs[start : start + batch_size]
            prefix, kw = self._generate(
                [g[1] for g in group],
                [g[2] for g in group],
                [g[3] for g in group],
                params,
                limit,
                [g[4] for g in group],
            )
            out = generate(self.model, prefix, **kw)
            for row, (j, _ids, _n, prompt, _seed) in enumerate(group):
                frames = out.codes[row : row + 1, :, : out.lengths[row]]
                pieces[j].append(self.decode(frames, prompt))
        overlap = int(CROSSFADE_SECONDS * self.sample_rate)
        return [crossfade_join(p, overlap) for p in pieces]

    def decode(self, codes: torch.Tensor, prompt: torch.Tensor | None = None) -> torch.Tensor:
        """Generated codes ``[1, Q, F]`` → audio ``[1, F * hop]`` (an empty ``[1, 0]`` for F = 0), from the first
        ``decode_levels`` levels (0 = all). A voice-conditioned codec speaks in the voice of ``prompt`` (codes
        ``[Q, Fp]``), else in the release's own voice, else in the voice of all generated levels."""
        if codes.shape[-1] == 0:
            return torch.zeros(1, 0)
        device = self.codec.device
        ref = reference_codes(prompt, self.voice, codes).to(device) if self.codec.has_speaker else None
        return self.codec.decode(codes[:, : self.decode_levels or None].to(device), ref)[0].float().cpu()

    @torch.inference_mode()
    def stream(
        self,
        text: str | Iterable[str],
        prompt_wav: PromptAudio = None,
        prompt_text: str | None = None,
        *,
        temperature=None,
        top_k=None,
        top_p=None,
        max_seconds: float | None = None,
        seed: int = 0,
        chunk_frames: int = 1,
    ) -> Iterator[torch.Tensor]:
        """Yield ``[1, n]`` audio chunks as soon as they are generated (``chunk_frames`` frames each, sentence by
        sentence). The concatenation equals :meth:`synthesize` with the same arguments whenever sentences end with
        END or at their length limit; when the repetition/silence guard stops a stuck sentence, offline synthesis
        trims the stuck tail while a stream has already played it.

        ``text`` may also be an iterable of string pieces (e.g. an LLM's tokens as they arrive): a sentence is
        spoken as soon as the next one has begun, and whatever is left when the pieces end (even mid-word) last.
        The sentences, their seeds and so the audio are those of the joined text given at once.

        Raises:
            ValueError: text that is neither a string nor an iterable of strings, or nothing speakable in it.
        """
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        streamed = not isinstance(text, str)
        if streamed and (isinstance(text, bytes) or not isinstance(text, Iterable)):
            raise ValueError(f"text must be a string or an iterable of strings, got {type(text).__name__}")
        params, limit = self._settings(temperature, top_k, top_p, max_seconds)
        prompt, prompt_text = self.prepare_prompt(prompt_wav, prompt_text)
        fader = CrossFader(int(CROSSFADE_SECONDS * self.sample_rate))
        k = 0  # sentences so far: sentence k uses seed + k, as offline
        for part in complete_parts(text) if streamed else [text]:
            # a streamed part may hold nothing speakable (a lone "..."): skipped, as offline splitting skips it
            ids, lengths = self._sentences(part, prompt_text, allow_empty=streamed)
            for sentence, n in zip(ids, lengths, strict=True):
                yield from self._stream_sentence(sentence, n, prompt, params, limit, seed + k, chunk_frames, fader)
                k += 1
        if k == 0:
            raise ValueError("the text stream held nothing speakable")
        rest = fader.flush()
        if rest is not None:
            yield rest

    def _stream_sentence(self, ids, n, prompt, params, limit, seed, chunk_frames, fader) -> Iterator[torch.Tensor]:
        """Audio chunks of one sentence (symbol ids ``ids``, ``n`` of them its own) through ``fader``."""
        prefix, kw = self._generate([ids], [n], [prompt], params, limit, [seed])
        with self.codec.streaming():
            for chunk in generate_frames(self.model, prefix, chunk_frames=chunk_frames, **kw):
                final = chunk.lengths[0]
                valid = chunk.codes.shape[-1] if final is None else max(0, final - chunk.start)
                if valid:
                    audio = self.decode(chunk.codes[:, :, :valid], prompt)
                    out = fader.push(audio)
                    if out.shape[-1]:
                        yield out
        fader.end_piece()
