"""A small streaming-state mechanism shared by convolutions, transformers and the iSTFT head.

A :class:`StreamingModule` behaves like a plain module until it is put in streaming mode with
``with streaming(model):``. Then each call consumes the next chunk of its input and keeps whatever it needs from the
past (conv tails, KV caches, overlap-add remainders) in ``self._state``, a dict it fills lazily on the first call
(so it knows batch size, dtype and device). Leaving the context drops every state, so a module never carries
history from one stream into the next.

The invariant tested for every streaming module: feeding a sequence chunk by chunk and concatenating the outputs
gives the same result as one offline call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import nn


class StreamingModule(nn.Module):
    """Base class: ``self._state`` is ``None`` offline and a dict while streaming."""

    def __init__(self) -> None:
        super().__init__()
        self._state: dict[str, Any] | None = None

    @property
    def is_streaming(self) -> bool:
        return self._state is not None


@contextlib.contextmanager
def streaming(module: nn.Module) -> Iterator[None]:
    """Put every :class:`StreamingModule` inside ``module`` in streaming mode for the duration of the block.

    Raises:
        RuntimeError: if ``module`` is already streaming (nested streams would share state).
    """
    mods = [m for m in module.modules() if isinstance(m, StreamingModule)]
    if any(m.is_streaming for m in mods):
        raise RuntimeError("module is already in streaming mode")
    for m in mods:
        m._state = {}
    try:
        yield
    finally:
        for m in mods:
            m._state = None
