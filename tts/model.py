"""The global-local hierarchical LM over 5 Hz codec frames (the paper's "U-Codec TTS"; see docs/design.md).

- **Global model**: a causal Transformer over ``[BOS] text [SEP] prompt_frames target_frames``. One frame is one
  position; its input is the concatenation (default, as in the paper) or the sum of its Q code embeddings.
- **Local model**: a small causal Transformer over the Q layers of one frame. Position 0 gets the projected global
  hidden state of the *previous* position; position q also gets the embedding of code q-1; it predicts code q.
  With ``local_levels_per_step`` G > 1 it runs Q / G positions of G layers each (fewer steps, faster generation).
  Layer 0's vocabulary has an extra END token that stops generation.

With ``aligned_text`` a :class:`WordPointer` also tells every target frame which word it speaks and predicts when
the word changes (:mod:`tts.aligned_text`).

``forward(batch)`` is the training path: the global model runs once over the whole batch and the local model runs
on all supervised frames at once (B·F sequences of length Q / G). The inference path (KV caches, sampling) lives in
:mod:`tts.generate` and calls :meth:`TTSModel.embed`, ``global_model`` and the :class:`LocalModel` step helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from tts.aligned_text import MAX_WORD_SYMBOLS
from tts.batch import TTSBatch
from tts.config import IGNORE_INDEX, TTSConfig
from tts.transformer import Transformer


@dataclass
class LMOutput:
    """Result of a training forward pass.

    Attributes:
        loss: scalar ``weighted speech loss + text_loss_weight * text_loss`` (what the trainer minimises); the
            weighted speech loss counts each layer's tokens :attr:`TTSConfig.level_weights` times.
        speech_loss: scalar mean cross-entropy over all target speech tokens (END included), unweighted.
        text_loss: scalar mean next-text-token cross-entropy (0 when the weight is 0).
        advance_loss: scalar mean cross-entropy of the word pointer's advance (aligned text; else None);
            ``advance_hits`` / ``advance_count``: its top-1 hits and scored frames.
        layer_loss: ``[Q]`` mean cross-entropy per RVQ layer (for logging; nan for a layer without targets).
        layer_hits: ``[Q]`` teacher-forced top-1 hits per layer; ``layer_count``: ``[Q]`` scored tokens per layer.
        logits: ``[N, Q, V + 1]`` local logits of the N supervised positions.
        targets: ``[N, Q]`` their targets (IGNORE_INDEX where none).
        hidden: ``[B, S, D]`` global hidden states.
    """

    loss: torch.Tensor
    speech_loss: torch.Tensor
    text_loss: torch.Tensor
    layer_loss: torch.Tensor
    layer_hits: torch.Tensor
    layer_count: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor
    hidden: torch.Tensor
    advance_loss: torch.Tensor | None = None
    advance_hits: torch.Tensor | None = None
    advance_count: torch.Tensor | None = None


class WordPointer(nn.Module):
    """Aligned text (:mod:`tts.aligned_text`): word vectors, the pointer's inputs and its advance head.

    A word's vector is the mean of its symbols' text embeddings plus a learned position inside the word. The word
    a frame speaks and the advance that led to it are added (through zero-initialised projections, so a plain
    model warm-starts unchanged) to the global input of that frame and to the local model's conditioning when the
    frame is predicted; ``head`` predicts the advance from the global hidden state that predicts the frame.
    """

    def __init__(self, cfg: TTSConfig) -> None:
        super().__init__()
        d, c = cfg.global_model.d_model, cfg.advance_classes
        self.symbol_pos = nn.Embedding(MAX_WORD_SYMBOLS, d)
        nn.init.normal_(self.symbol_pos.weight, std=0.02)
        self.to_global, self.to_local = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.advance_global, self.advance_local = nn.Embedding(c, d), nn.Embedding(c, d)
        for m in (self.to_global, self.to_local, self.advance_global, self.advance_local):
            nn.init.zeros_(m.weight)
        self.head = nn.Linear(d, c)

    def vectors(self, text: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Word vectors ``[B, G, D]`` from text embeddings ``[B, S, D]`` and ``groups [B, S]`` (word index, -1 for
        no word); G = the most words of any item (at least 1; absent words are zeros)."""
        b, s, d = text.shape
        inside = groups >= 0
        g = int(groups.max().clamp_min(0)) + 1
        idx = groups.clamp_min(0)
        pos = torch.arange(s, device=groups.device).expand(b, s)
        first = torch.full((b, g), s, device=groups.device, dtype=torch.long)
        first = first.scatter_reduce(1, idx, torch.where(inside, pos, s), reduce="amin")
        within = (pos - first.gather(1, idx)).clamp(0, MAX_WORD_SYMBOLS - 1)
        v = (text + self.symbol_pos(within)) * inside[..., None]
        sums = text.new_zeros(b, g, d).scatter_add(1, idx[..., None].expand(b, s, d), v)
        count = text.new_zeros(b, g).scatter_add(1, idx, inside.to(text.dtype))
        return sums / count.clamp_min(1)[..., None]

    def side_input(self, side: str, words: torch.Tensor, pointer: torch.Tensor, advance: torch.Tensor) -> torch.Tensor:
        """What the pointer adds on one ``side`` (``"global"``: a frame's input, ``"local"``: the local model's
        conditioning), ``[B, ..., D]`` for ``pointer`` and ``advance`` ``[B, ...]`` over ``words [B, G, D]``; zero
        where the pointer is negative (no word)."""
        glob = side == "global"
        proj, adv_emb = (self.to_global, self.advance_global) if glob else (self.to_local, self.advance_local)
        flat = pointer.clamp_min(0).reshape(pointer.shape[0], -1)
        word = words.gather(1, flat[..., None].expand(-1, -1, words.shape[-1])).view(*pointer.shape, -1)
        adv = advance.clamp(0, self.head.out_features - 1)
        return (proj(word) + adv_emb(adv)) * (pointer >= 0)[..., None].to(words.dtype)

    def inputs(
        self, words: torch.Tensor, pointer: torch.Tensor, advance: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(global_add, local_add)`` of :meth:`side_input` (generation needs both for each frame)."""
        return tuple(self.side_input(side, words, pointer, advance) for side in ("global", "local"))


class FrameEmbedding(nn.Module):
    """codes ``[B, Q, S]`` → frame vectors ``[B, S, D]``: Q per-layer embeddings, concatenated and projected
    (``concat``) or summed (``sum``). One table of ``Q * V`` rows with per-layer offsets = Q lookups in one op."""

    def __init__(self, cfg: TTSConfig) -> None:
        super().__init__()
        q, v = cfg.num_codebooks, cfg.codebook_size
        self.mode = cfg.frame_embedding
        width = cfg.code_embedding_dim if self.mode == "concat" else cfg.global_model.d_model
        self.table = nn.Embedding(q * v, width)
        self.proj = nn.Linear(q * width, cfg.global_model.d_model, bias=False) if self.mode == "concat" else None
        self.register_buffer("offsets", torch.arange(q) * v, persistent=False)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[B, Q, S]`` (values in ``[0, V)``) → ``[B, S, D]``."""
        e = self.table(codes.transpose(1, 2) + self.offsets)  # [B, S, Q, W]
        if self.proj is None:
            return e.sum(dim=2)
        return self.proj(e.flatten(2))


class LocalModel(nn.Module):
    """The per-frame depth Transformer over S = Q / G steps, each predicting G consecutive RVQ layers
    (``local_levels_per_step``; G = 1 is one step per layer). Training: :meth:`forward`; inference:
    :meth:`frame_inputs` once per frame, then per step p :meth:`step_input` → ``self.transformer`` (KV cache of S
    slots) → for each layer q of the step :meth:`step_logits`, with :meth:`intra_step` between the layers of a step.

    Step p's input is the projected global context + a learned depth position + the summed embeddings of the codes
    of step p - 1. Inside a step, layer q > pG reads the step's hidden state plus the embeddings of the codes already
    chosen in that step (a zero-initialised table), so the layers of a step are not sampled independently.
    """

    def __init__(self, cfg: TTSConfig) -> None:
        super().__init__()
        q, v, d = cfg.num_codebooks, cfg.codebook_size, cfg.local_model.d_model
        g = cfg.local_levels_per_step
        self.num_codebooks, self.codebook_size, self.group, self.steps = q, v, g, cfg.local_steps
        self.in_proj = nn.Linear(cfg.global_model.d_model, d, bias=False)
        self.code_emb = nn.Embedding(max(q - g, 1) * v, d)  # inputs to steps 1..S-1 (codes of layers 0..Q-G-1)
        self.pos_emb = nn.Parameter(torch.randn(self.steps, d) * 0.02)  # learned positions: fixed, short depth
        self.transformer = Transformer(cfg.local_model, rope=False)
        self.head = nn.Parameter(torch.randn(q, d, cfg.head_vocab) * 0.02)  # per-layer output heads
        self.intra_emb = None
        if g > 1:  # row (q - 1) * V + code: what layer q's hidden gains from the code of layer q - 1 in its step
            self.intra_emb = nn.Embedding((q - 1) * v, d)
            nn.init.zeros_(self.intra_emb.weight)
            first = torch.arange(q) % g == 0
            self.register_buffer("intra_keep", ~first[:, None], persistent=False)  # [Q, 1]: no intra at a step start
        end_mask = torch.zeros(q, cfg.head_vocab, dtype=torch.bool)
        end_mask[1:, cfg.end_id] = True  # only layer 0 may say END
        self.register_buffer("end_mask", end_mask, persistent=False)
        self.register_buffer("offsets", torch.arange(max(q - 1, 1)) * v, persistent=False)

    def forward(self, hidden: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits of every layer.

        Args:
            hidden: ``[N, Dg]`` global hidden states (each predicts the frame after it).
            codes: ``[N, Q]`` the frames to predict (values in ``[0, V)``; the codes of step p are the input of
                step p+1).

        Returns:
            ``[N, Q, V + 1]`` logits, END masked to -inf for layers >= 1.
        """
        n, q = codes.shape
        g, s = self.group, self.steps
        x = self.frame_inputs(hidden)  # [N, S, D]
        if s > 1:
            prev = self.code_emb(codes[:, : q - g] + self.offsets[: q - g])  # [N, Q-G, D]
            x = torch.cat([x[:, :1], x[:, 1:] + prev.view(n, s - 1, g, -1).sum(2)], dim=1)
        h = self.transformer(x)  # causal over the depth: step p sees the layers of steps < p only
        if g > 1:
            intra = self.intra_emb(codes[:, :-1] + self.offsets)  # [N, Q-1, D]: code q-1 → layer q
            intra = F.pad(intra, (0, 0, 1, 0)) * self.intra_keep  # [N, Q, D], zero at each step's first layer
            h = h.repeat_interleave(g, dim=1) + intra.view(n, s, g, -1).cumsum(2).flatten(1, 2)
        logits = torch.einsum("nqd,qdv->nqv", h, self.head)
        return logits.masked_fill(self.end_mask, float("-inf"))

    def frame_inputs(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[N, Dg]`` global hidden → ``[N, S, D]`` projected context + learned depth positions."""
        return self.in_proj(hidden)[:, None, :] + self.pos_emb

    def step_input(self, base: torch.Tensor, p: int, prev_codes: torch.Tensor | None) -> torch.Tensor:
        """Input of local step ``p``: ``base [B, S, D]`` from :meth:`frame_inputs` (+ the embeddings of
        ``prev_codes``, the codes just chosen in step p-1: ``[B]`` when G = 1, else ``[B, G]``) → ``[B, D]``."""
        if p == 0:
            return base[:, 0]
        if self.group == 1:
            return base[:, p] + self.code_emb(prev_codes + (p - 1) * self.codebook_size)
        first = (p - 1) * self.group
        return base[:, p] + self.code_emb(prev_codes + self.offsets[first : first + self.group]).sum(1)

    def intra_step(self, h: torch.Tensor, prev_code: torch.Tensor, q: int) -> torch.Tensor:
        """Hidden ``[B, D]`` of layer ``q`` (not the first of its step) from the hidden of layer q-1 and the code
        ``prev_code [B]`` chosen for it."""
        return h + self.intra_emb(prev_code + (q - 1) * self.codebook_size)

    def step_logits(self, h: torch.Tensor, q: int) -> torch.Tensor:
        """``[B, D]`` local hidden of layer ``q`` → logits ``[B, V + 1]`` for layer 0 (END included) and
        ``[B, V]`` for finer layers (END is not in their vocabulary, so it is not even computed)."""
        return h @ (self.head[q] if q == 0 else self.head[q, :, : self.codebook_size])


class TTSModel(nn.Module):
    """Global-local TTS LM. Build from a :class:`TTSConfig`; releases are handled by :mod:`tts.pipeline`."""

    def __init__(self, config: TTSConfig) -> None:
        super().__init__()
        self.config = config
        d = config.global_model.d_model
        self.text_emb = nn.Embedding(config.text_vocab_size, d)
        self.frame_emb = FrameEmbedding(config)
        self.global_model = Transformer(config.global_model, rope=True)
        self.text_head = nn.Linear(d, config.text_vocab_size, bias=False)
        self.local = LocalModel(config)
        self.pointer = WordPointer(config) if config.aligned_text else None
        for emb in (self.text_emb, self.frame_emb.table, self.local.code_emb):
            nn.init.normal_(emb.weight, std=0.02)

    @property
    def num_codebooks(self) -> int:
        return self.config.num_codebooks

    def embed(self, tokens: torch.Tensor, codes: torch.Tensor, is_frame: torch.Tensor) -> torch.Tensor:
        """Global input vectors ``[B, S, D]`` from ``tokens [B, S]``, ``codes [B, Q, S]``, ``is_frame [B, S]``."""
        text = self.text_emb(tokens)
        frames = self.frame_emb(codes)
        return torch.where(is_frame[..., None], frames, text)

    def forward(self, batch: TTSBatch) -> LMOutput:
        """Training pass over a right-padded :class:`TTSBatch` (teacher forcing, all frames in parallel)."""
        cfg = self.config
        if batch.num_codebooks != cfg.num_codebooks:
            raise ValueError(f"batch has {batch.num_codebooks} codebooks, the model {cfg.num_codebooks}")
        x = self.embed(batch.tokens, batch.codes, batch.is_frame)
        aligned = self.pointer is not None and batch.next_word is not None
        if aligned:  # frame p reads the pointer set where it was predicted (p - 1)
            words = self.pointer.vectors(self.text_emb(batch.tokens), batch.word_of_token)
            shift = partial(F.pad, pad=(1, -1))
            x = x + self.pointer.side_input(
                "global", words, shift(batch.next_word, value=-1), shift(batch.next_advance, value=0)
            )
        hidden = self.global_model(x, positions=batch.positions)  # [B, S, D]

        targets = batch.speech_targets.transpose(1, 2)  # [B, S, Q]
        supervised = targets[..., 0] != IGNORE_INDEX  # [B, S]: positions whose next frame (or END) is a target
        targets = targets[supervised]  # [N, Q]
        inputs = targets.clamp(0, cfg.codebook_size - 1)  # END/ignored entries are never seen by a scored position
        context = hidden[supervised]
        advance_loss = advance_hits = advance_count = None
        if aligned:
            context = context + self.pointer.side_input("local", words, batch.next_word, batch.next_advance)[supervised]
            scored_adv = batch.next_advance != IGNORE_INDEX
            adv_logits = self.pointer.head(hidden[scored_adv])
            adv_targets = batch.next_advance[scored_adv]
            advance_loss = F.cross_entropy(adv_logits, adv_targets) if adv_targets.numel() else hidden.new_zeros(())
            advance_hits = (adv_logits.argmax(-1) == adv_targets).sum().detach()
            advance_count = scored_adv.sum()
        logits = self.local(context, inputs)  # [N, Q, V + 1]
        token_loss = F.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
        ).view_as(targets)
        scored = (targets != IGNORE_INDEX).float()
        speech_loss = (token_loss * scored).sum() / scored.sum().clamp_min(1)
        layer_loss = (token_loss * scored).sum(0) / scored.sum(0)  # nan where a layer has no targets
        weighted = speech_loss
        if any(w != 1.0 for w in cfg.level_weights):  # layer 0 decides END; the content levels carry the words
            scored_w = scored * torch.tensor(cfg.level_weights, device=scored.device)
            weighted = (token_loss * scored_w).sum() / scored_w.sum().clamp_min(1)
        with torch.no_grad():
            layer_hits = ((logits.argmax(-1) == targets).float() * scored).sum(0)

        text_loss = hidden.new_zeros(())
        if cfg.text_loss_weight > 0:
            is_text = batch.text_targets != IGNORE_INDEX  # [B, S]
            text_loss = F.cross_entropy(self.text_head(hidden[is_text]), batch.text_targets[is_text])
        loss = weighted + cfg.text_loss_weight * text_loss
        if advance_loss is not None:
            loss = loss + cfg.advance_loss_weight * advance_loss
        return LMOutput(
            loss=loss,
            speech_loss=speech_loss,
            text_loss=text_loss,
            layer_loss=layer_loss.detach(),
            layer_hits=layer_hits,
            layer_count=scored.sum(0),
            logits=logits,
            targets=targets,
            hidden=hidden,
            advance_loss=advance_loss,
            advance_hits=advance_hits,
            advance_count=advance_count,
        )

    def num_parameters(self) -> dict[str, int]:
        """Parameter counts of the parts and the total."""
        parts = {
            "embeddings": sum(p.numel() for m in (self.text_emb, self.frame_emb) for p in m.parameters()),
            "global": sum(p.numel() for p in self.global_model.parameters()),
            "text_head": self.text_head.weight.numel(),
            "local": sum(p.numel() for p in self.local.parameters()),
        }
        if self.pointer is not None:
            parts["pointer"] = sum(p.numel() for p in self.pointer.parameters())
        parts["total"] = sum(parts.values())
        return parts


# Tensors whose leading rows (or columns) are per RVQ level, in level order: what a model of fewer levels keeps.
PER_LEVEL_TENSORS = (
    "frame_emb.table.weight",  # [Q * V, W]: level-major rows
    "frame_emb.proj.weight",  # [D, Q * W]: level-major columns (concat embedding)
    "local.code_emb.weight",  # [(Q - G) * V, d]
    "local.intra_emb.weight",  # [(Q - 1) * V, d]
    "local.pos_emb",  # [Q / G, d]: one row per local step
    "local.head",  # [Q, d, V + 1]
)


def keep_first_levels(
    state: dict[str, torch.Tensor], model: TTSModel, skip: tuple[str, ...] = ()
) -> dict[str, torch.Tensor]:
    """The weights of a model of more RVQ levels cut down to ``model``'s first ``Q`` levels (a warm start of a
    model of the codec's first levels from one of all of them): each per-level tensor keeps its leading block,
    which is exactly what those levels read and predict; every other tensor, and those under the name prefixes
    ``skip`` (parts relearned in another shape), are returned as they are.

    Raises:
        ValueError: ``state`` has fewer levels than ``model`` (there is nothing to cut), or a per-level tensor
            does not contain the model's.
    """
    own = model.state_dict()
    out = dict(state)
    for name in PER_LEVEL_TENSORS:
        if name not in state or name not in own or name.startswith(skip):
            continue
        theirs, mine = state[name], own[name]
        if theirs.shape == mine.shape:
            continue
        if theirs.dim() != mine.dim() or any(m > t for m, t in zip(mine.shape, theirs.shape, strict=True)):
            raise ValueError(f"{name}: {tuple(theirs.shape)} holds fewer levels than this model's {tuple(mine.shape)}")
        out[name] = theirs[tuple(slice(0, n) for n in mine.shape)]
    return out
