"""The stop rules of generation (``tts/stop_rules.py``) on hand-written frame sequences: END, repetition, silence
and the length cap, which rule wins, and how a chunk is trimmed."""

from __future__ import annotations

import torch

from tts.config import SamplingConfig
from tts.stop_rules import StopRules

Q, END_ID = 4, 9  # 4 layers of codes 0..8; END = 9 on layer 0
SILENT = torch.tensor([0, 0, 0, 0])


def frame(*codes: int) -> torch.Tensor:
    """One frame ``[1, Q]``: the given layer-0..k codes, the rest 1."""
    return torch.tensor([[*codes, *([1] * (Q - len(codes)))]])


def feed(rules: StopRules, frames: list[torch.Tensor]) -> None:
    """Run ``frames`` through the rules as the generator does (the fed frame has END clamped away)."""
    previous = None
    for t, f in enumerate(frames):
        rules.update(t, f, previous)
        previous = f.clamp_max(END_ID - 1)


def make(max_frames=(100,), silence=None, **guard) -> StopRules:
    cfg = SamplingConfig(**{"max_repeat_frames": 0, "max_silence_frames": 0, "repeat_layers": 2, **guard})
    return StopRules(END_ID, list(max_frames), cfg, Q, silence)


def state(rules: StopRules) -> tuple[list[int], list[str]]:
    chunk = rules.chunk(torch.zeros(len(rules.lengths), Q, 0, dtype=torch.long), 0)
    return [-1 if n is None else n for n in chunk.lengths], chunk.reasons


def test_end_stops_without_keeping_the_end_frame():
    rules = make()
    feed(rules, [frame(1), frame(2), frame(END_ID)])
    assert state(rules) == ([2], ["end"])


def test_a_running_sequence_has_no_length():
    rules = make()
    feed(rules, [frame(1), frame(2)])
    assert state(rules) == ([-1], ["running"])


def test_the_length_cap_keeps_the_last_allowed_frame():
    rules = make(max_frames=(3,))
    feed(rules, [frame(1), frame(2), frame(3)])
    assert state(rules) == ([3], ["max_length"])


def test_repetition_cuts_the_stuck_run():
    rules = make(max_repeat_frames=3)
    feed(rules, [frame(1), frame(2), frame(5), frame(5), frame(5), frame(5)])  # frame 2 repeats 3 times: stop at 5
    assert state(rules) == ([3], ["repetition"])


def test_repetition_compares_only_the_first_layers():
    rules = make(max_repeat_frames=2, repeat_layers=1)
    feed(rules, [frame(4, 1), frame(4, 2), frame(4, 3)])  # layer 1 differs, layer 0 repeats
    assert state(rules) == ([1], ["repetition"])


def test_silence_counts_only_after_speech_and_keeps_one_frame():
    rules = make(silence=SILENT, max_silence_frames=2)
    leading = [frame(0, 0, 0, 0)] * 3  # silence before any speech never stops a sequence
    feed(rules, [*leading, frame(2, 2), frame(0, 0, 0, 0), frame(0, 0, 0, 0)])
    assert state(rules) == ([5], ["silence"])  # speech at 3, silent 4 and 5: keep frame 4


def test_end_wins_over_the_cap_on_the_same_frame():
    rules = make(max_frames=(2,))
    feed(rules, [frame(1), frame(END_ID)])
    assert state(rules) == ([1], ["end"])


def test_a_stopped_sequence_keeps_its_first_reason():
    rules = make(max_frames=(5,))
    feed(rules, [frame(END_ID), frame(1), frame(2), frame(3), frame(4)])
    assert state(rules) == ([0], ["end"])


def test_each_sequence_of_a_batch_stops_on_its_own():
    rules = make(max_frames=(2, 4))
    both = [torch.cat([frame(1), frame(1)]), torch.cat([frame(2), frame(END_ID)]), torch.cat([frame(3), frame(3)])]
    feed(rules, both)
    assert state(rules) == ([2, 1], ["max_length", "end"])


def test_chunk_zeroes_frames_past_each_length():
    rules = make(max_frames=(2, 4))
    feed(rules, [torch.cat([frame(1), frame(1)]), torch.cat([frame(2), frame(2)])])
    codes = torch.full((2, Q, 2), 7)
    chunk = rules.chunk(codes, start=1)  # frames 1 and 2 of both sequences
    assert chunk.lengths == [2, None] and chunk.start == 1 and not chunk.done
    assert chunk.codes[0, :, 0].eq(7).all() and chunk.codes[0, :, 1].eq(0).all()  # frame 2 >= length 2
    assert chunk.codes[1].eq(7).all()  # still running: nothing trimmed
