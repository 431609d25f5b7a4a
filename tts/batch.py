"""Model inputs: the training batch (right-padded, with targets) and the inference prefix (left-padded).

One item is the global sequence ``[BOS] text [SEP] prompt_frames target_frames``. Every position is either a text
token or a whole frame, so a batch is stored position-major: ``tokens [B, S]`` holds text ids at text positions and
``codes [B, Q, S]`` holds the frame's codes at frame positions, with ``is_frame [B, S]`` telling which is which.

Targets follow "position p predicts position p + 1": the hidden state at ``SEP`` predicts the first frame, a frame
predicts the next frame, and the last target frame predicts END (layer 0 only). Speech targets exist only for
target frames (prompt frames are context, not supervision); text targets exist for every next text token.

The TTS trainer gets ``(text_ids, prompt_codes, target_codes)`` per utterance from the token store and calls
``model(collate(items))``; the generator builds its prompt with :func:`build_prefix`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from tts.aligned_text import FrameTextLayout, frame_text_targets, group_starts, word_groups
from tts.config import BOS_ID, IGNORE_INDEX, PAD_ID, SEP_ID


@dataclass(frozen=True)
class TTSItem:
    """One training utterance.

    Attributes:
        text_ids: frontend ids of (prompt transcript +) target text, without BOS/SEP.
        prompt_codes: ``[Q, Fp]`` codes of the voice prompt (context only), or None.
        target_codes: ``[Q, Ft]`` codes to learn.
        target_text_length: symbols of the target text at the end of ``text_ids`` (None: all of them); aligned
            positions (:func:`item_positions`) and aligned text read it.
        word_starts: start times (s) of the target text's frontend words, for aligned text (from
            :func:`tts.aligned_text.frontend_word_starts`; a list of another length is spread over the words by
            count); None = not aligned.
    """

    text_ids: Sequence[int] | torch.Tensor
    prompt_codes: torch.Tensor | None
    target_codes: torch.Tensor
    target_text_length: int | None = None
    word_starts: Sequence[float] | None = None


@dataclass
class TTSBatch:
    """A right-padded training batch (S = longest item). See the module docstring for the layout.

    Attributes:
        tokens: ``[B, S]`` text ids at text positions (BOS, text, SEP), PAD elsewhere.
        codes: ``[B, Q, S]`` frame codes at frame positions, 0 elsewhere.
        is_frame: ``[B, S]`` bool.
        lengths: ``[B]`` real positions per item.
        text_targets: ``[B, S]`` next text id where the next position is text, else IGNORE_INDEX.
        speech_targets: ``[B, Q, S]`` codes of the next frame where it is a target frame; END in layer 0 at the
            last position of every item; IGNORE_INDEX elsewhere.
        positions: ``[B, S]`` RoPE positions (:func:`item_positions`; long, or float with aligned positions).
        word_of_token: ``[B, S]`` aligned text only: the target-text word of each text position, -1 elsewhere.
        next_word: ``[B, S]`` aligned text only: at each position that predicts a target frame (or END), the word
            pointer of that frame; -1 elsewhere.
        next_advance: ``[B, S]`` aligned text only: the pointer's advance class there; IGNORE_INDEX elsewhere.
    """

    tokens: torch.Tensor
    codes: torch.Tensor
    is_frame: torch.Tensor
    lengths: torch.Tensor
    text_targets: torch.Tensor
    speech_targets: torch.Tensor
    positions: torch.Tensor
    word_of_token: torch.Tensor | None = None
    next_word: torch.Tensor | None = None
    next_advance: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> TTSBatch:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return TTSBatch(**{k: v if v is None else v.to(device) for k, v in moved.items()})

    @property
    def num_codebooks(self) -> int:
        return self.codes.shape[1]


def _as_ids(text_ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
    ids = torch.as_tensor(text_ids, dtype=torch.long).flatten()
    if ids.numel() == 0:
        raise ValueError("an item has no text ids; every utterance needs text")
    return ids


def first_levels(codes: torch.Tensor | None, num_codebooks: int) -> torch.Tensor | None:
    """The first ``num_codebooks`` levels of codes ``[Q', F]`` with ``Q' >= num_codebooks`` (a model of the first
    levels of a deeper codec); anything else unchanged (None, or a shape :func:`_check_codes` refuses)."""
    if codes is None or codes.dim() != 2 or codes.shape[0] <= num_codebooks:
        return codes
    return codes[:num_codebooks]


def _check_codes(codes: torch.Tensor | None, num_codebooks: int, what: str) -> torch.Tensor:
    if codes is None:
        return torch.zeros(num_codebooks, 0, dtype=torch.long)
    if codes.dim() != 2 or codes.shape[0] != num_codebooks:
        raise ValueError(f"{what} must be [Q={num_codebooks}, F], got {tuple(codes.shape)}")
    return codes.long()


def first_target_position(num_ids: int, target_ids: int, num_prompt: int, frame_stride: float) -> float:
    """RoPE position of an item's first target frame (see :func:`item_positions`)."""
    if frame_stride == 0:
        return num_ids + 2 + num_prompt  # the next position after [BOS] text [SEP] prompt
    return 1 + num_ids - target_ids  # the target text's first symbol


def item_positions(
    num_ids: int, target_ids: int, num_prompt: int, num_frames: int, frame_stride: float
) -> torch.Tensor:
    """RoPE positions ``[num_ids + 2 + num_frames]`` of one ``[BOS] text [SEP] frames`` sequence.

    Args:
        num_ids: text symbols (prompt transcript + target text); ``target_ids`` of them are the target text.
        num_prompt: prompt frames among the ``num_frames`` (prompt then target).
        frame_stride: 0 = one position per token, ``0 .. S-1`` (long). ``> 0`` = **aligned positions** (float):
            the text keeps ``0 .. num_ids + 1`` and the frames are laid on the text's axis ``frame_stride``
            symbols apart, target frame ``j`` at the target text's first symbol ``+ frame_stride * j`` and the
            prompt's frames before it (a transcribed prompt's then fall on its transcript, a crop's before the
            text). With ``frame_stride`` near the corpus's symbols per frame, the symbols spoken at frame ``f`` sit
            at a nearly constant RoPE offset from it, which relative attention can learn to follow; with one
            position per token that offset grows by (symbols per frame - 1) every frame (``ucodec eval tts-align``).
    """
    n_text = num_ids + 2
    if frame_stride == 0:
        return torch.arange(n_text + num_frames)
    start = first_target_position(num_ids, target_ids, num_prompt, frame_stride)
    frames = start + frame_stride * (torch.arange(num_frames, dtype=torch.float32) - num_prompt)
    return torch.cat([torch.arange(n_text, dtype=torch.float32), frames])


def target_words(ids: torch.Tensor, target_ids: int, space_id: int | None) -> torch.Tensor:
    """``[len(ids)]`` word index of each id of the target text (its last ``target_ids`` ids), -1 elsewhere."""
    groups = torch.full((ids.numel(),), -1, dtype=torch.long)
    if target_ids > 0:
        groups[-target_ids:] = torch.tensor(word_groups(ids[-target_ids:].tolist(), space_id))
    return groups


def collate(
    items: Sequence[TTSItem | tuple],
    end_id: int,
    frame_stride: float = 0.0,
    layout: FrameTextLayout | None = None,
) -> TTSBatch:
    """Right-pad a list of utterances into a :class:`TTSBatch`.

    Args:
        items: :class:`TTSItem` or ``(text_ids, prompt_codes | None, target_codes [Q, Ft])`` tuples.
        end_id: layer 0's END token (``TTSConfig.end_id``).
        frame_stride: the model's ``frame_position_stride`` (RoPE positions, :func:`item_positions`).
        layout: aligned text (:mod:`tts.aligned_text`): fills ``word_of_token``, ``next_word`` and
            ``next_advance`` from each item's ``word_starts`` (an item without them gets no pointer).

    Raises:
        ValueError: empty list, empty text, or codes with inconsistent Q.
    """
    if not items:
        raise ValueError("collate() needs at least one item")
    items = [it if isinstance(it, TTSItem) else TTSItem(*it) for it in items]
    q = items[0].target_codes.shape[0]
    parts = []
    for it in items:
        ids = _as_ids(it.text_ids)
        prompt = _check_codes(it.prompt_codes, q, "prompt_codes")
        target = _check_codes(it.target_codes, q, "target_codes")
        parts.append((ids, prompt, target, ids.numel() if it.target_text_length is None else it.target_text_length))
    lengths = [ids.numel() + 2 + p.shape[1] + t.shape[1] for ids, p, t, _ in parts]
    b, s = len(parts), max(lengths)
    positions = torch.zeros(b, s, dtype=torch.float32 if frame_stride else torch.long)
    tokens = torch.full((b, s), PAD_ID, dtype=torch.long)
    codes = torch.zeros(b, q, s, dtype=torch.long)
    is_frame = torch.zeros(b, s, dtype=torch.bool)
    text_targets = torch.full((b, s), IGNORE_INDEX, dtype=torch.long)
    speech_targets = torch.full((b, q, s), IGNORE_INDEX, dtype=torch.long)
    aligned = None
    if layout is not None:
        aligned = (torch.full((b, s), -1), torch.full((b, s), -1), torch.full((b, s), IGNORE_INDEX))
    for i, (ids, prompt, target, target_ids) in enumerate(parts):
        n_text = ids.numel() + 2  # BOS ... SEP
        positions[i, : lengths[i]] = item_positions(
            ids.numel(), target_ids, prompt.shape[1], prompt.shape[1] + target.shape[1], frame_stride
        )
        text = torch.cat([torch.tensor([BOS_ID]), ids, torch.tensor([SEP_ID])])
        tokens[i, :n_text] = text
        text_targets[i, : n_text - 1] = text[1:]
        frames = torch.cat([prompt, target], dim=1)
        n_frames = frames.shape[1]
        codes[i, :, n_text : n_text + n_frames] = frames
        is_frame[i, n_text : n_text + n_frames] = True
        first_target = n_text + prompt.shape[1]  # position of the first target frame
        speech_targets[i, :, first_target - 1 : lengths[i] - 1] = target
        speech_targets[i, 0, lengths[i] - 1] = end_id
        if aligned is not None and items[i].word_starts is not None:
            groups = target_words(ids, target_ids, layout.space_id)
            aligned[0][i, 1 : n_text - 1] = groups
            starts = group_starts(int(groups.max()) + 1, items[i].word_starts)
            pointers, advances = frame_text_targets(starts, target.shape[1], layout.frame_rate, layout.classes)
            aligned[1][i, first_target - 1 : lengths[i]] = torch.tensor(pointers)
            aligned[2][i, first_target - 1 : lengths[i]] = torch.tensor(advances)
    batch = TTSBatch(tokens, codes, is_frame, torch.tensor(lengths), text_targets, speech_targets, positions)
    if aligned is not None:
        batch.word_of_token, batch.next_word, batch.next_advance = aligned
    return batch


@dataclass
class Prefix:
    """A left-padded inference prompt ``[BOS] text [SEP] prompt_frames`` for the global model.

    Attributes:
        tokens: ``[B, S]`` as in :class:`TTSBatch`.
        codes: ``[B, Q, S]``.
        is_frame: ``[B, S]``.
        valid: ``[B, S]`` bool, False on the left padding.
        positions: ``[B, S]`` RoPE positions, counted from each item's first real position (:func:`item_positions`).
        lengths: real positions per item (host ints: they size caches and never need a device sync).
        text_lengths: target-text symbols per item (sets the min/max generation length).
        next_positions: ``[B]`` RoPE position of each item's first generated frame; frame ``j`` gets
            ``next_positions + frame_step * j``.
        frame_step: RoPE distance between consecutive frames (1, or the aligned positions' stride).
        word_of_token: ``[B, S]`` aligned text only: target-text word of each position, -1 elsewhere.
        num_words: aligned text only: words of each target text (the pointer's end).
    """

    tokens: torch.Tensor
    codes: torch.Tensor
    is_frame: torch.Tensor
    valid: torch.Tensor
    positions: torch.Tensor
    lengths: list[int]
    text_lengths: list[int]
    next_positions: torch.Tensor
    frame_step: float = 1
    word_of_token: torch.Tensor | None = None
    num_words: list[int] | None = None

    @property
    def padded(self) -> bool:
        return len(set(self.lengths)) > 1

    def to(self, device: torch.device | str) -> Prefix:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("tokens", "codes", "is_frame", "valid", "positions", "next_positions", "word_of_token"):
            if moved[name] is not None:
                moved[name] = moved[name].to(device)
        return Prefix(**moved)


def build_prefix(
    text_ids: Sequence[Sequence[int] | torch.Tensor],
    prompt_codes: Sequence[torch.Tensor | None],
    num_codebooks: int,
    target_text_lengths: Sequence[int] | None = None,
    frame_stride: float = 0.0,
    aligned_text: bool = False,
    space_id: int | None = None,
) -> Prefix:
    """Left-pad the inference prompts of a batch so that every item's next position is the same cache slot.

    Args:
        text_ids: per item, ids of (prompt transcript +) target text, without BOS/SEP.
        prompt_codes: per item ``[Q', Fp]`` (``Q' >= Q``: a prompt of all the codec's levels gives its first Q)
            or None.
        num_codebooks: Q.
        target_text_lengths: symbols of the target text alone (default: all of ``text_ids``).
        frame_stride: the model's ``frame_position_stride`` (RoPE positions, :func:`item_positions`).
        aligned_text: fill ``word_of_token`` and ``num_words`` (the model's ``aligned_text``), words being runs
            of symbols between ``space_id``.
    """
    if len(text_ids) != len(prompt_codes) or not text_ids:
        raise ValueError(f"need one prompt (or None) per text: {len(text_ids)} texts, {len(prompt_codes)} prompts")
    parts = [
        (_as_ids(t), _check_codes(first_levels(p, num_codebooks), num_codebooks, "prompt_codes"))
        for t, p in zip(text_ids, prompt_codes, strict=True)
    ]
    lengths = [ids.numel() + 2 + p.shape[1] for ids, p in parts]
    b, s = len(parts), max(lengths)
    tokens = torch.full((b, s), PAD_ID, dtype=torch.long)
    codes = torch.zeros(b, num_codebooks, s, dtype=torch.long)
    is_frame = torch.zeros(b, s, dtype=torch.bool)
    valid = torch.zeros(b, s, dtype=torch.bool)
    text_lengths = list(target_text_lengths) if target_text_lengths is not None else [p[0].numel() for p in parts]
    positions = torch.zeros(b, s, dtype=torch.float32 if frame_stride else torch.long)
    word_of_token = torch.full((b, s), -1, dtype=torch.long) if aligned_text else None
    num_words = [] if aligned_text else None
    starts = []
    for i, ((ids, prompt), n) in enumerate(zip(parts, lengths, strict=True)):
        pad = s - n
        n_text = ids.numel() + 2
        tokens[i, pad : pad + n_text] = torch.cat([torch.tensor([BOS_ID]), ids, torch.tensor([SEP_ID])])
        codes[i, :, pad + n_text :] = prompt
        is_frame[i, pad + n_text :] = True
        valid[i, pad:] = True
        num_prompt = prompt.shape[1]
        positions[i, pad:] = item_positions(ids.numel(), text_lengths[i], num_prompt, num_prompt, frame_stride)
        starts.append(first_target_position(ids.numel(), text_lengths[i], num_prompt, frame_stride))
        if word_of_token is not None:
            groups = target_words(ids, text_lengths[i], space_id)
            word_of_token[i, pad + 1 : pad + n_text - 1] = groups
            num_words.append(max(int(groups.max()) + 1, 1))
    next_positions = torch.tensor(starts, dtype=positions.dtype)
    step = frame_stride or 1
    prefix = Prefix(tokens, codes, is_frame, valid, positions, lengths, text_lengths, next_positions, step)
    prefix.word_of_token, prefix.num_words = word_of_token, num_words
    return prefix
