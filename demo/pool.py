"""A bounded pool of TTS replicas: at most ``workers`` syntheses run at once, at most ``max_queue`` more wait.

Why replicas and not one shared model: the codec's streaming decoder keeps its state on the modules (see
``codec/nn/streaming.py``), so two streams on one model would mix their histories. Each worker owns a deep copy; the
models are small, and memory is ``workers`` copies no matter how many clients connect.

Why admission is refused instead of queued without bound: every waiting request holds its text, a thread and a
socket. Past ``workers + max_queue`` requests in flight the server answers 503 at once, so memory stays flat under
any load and clients can retry.
"""

from __future__ import annotations

import contextlib
import copy
import queue
import threading
from collections.abc import Iterator

from tts.pipeline import TTS


class Overloaded(RuntimeError):
    """Every worker is busy and the waiting line is full (HTTP 503)."""


class WorkerPool:
    """``workers`` TTS replicas behind an admission limit of ``workers + max_queue`` requests in flight.

    Args:
        tts: the model; it is the first replica, the others are deep copies.
        workers: syntheses that run at the same time (>= 1).
        max_queue: requests that may wait for a free worker (>= 0).
        wait_seconds: longest wait for a worker once admitted; then :class:`Overloaded`.

    Raises:
        ValueError: ``workers < 1`` or ``max_queue < 0``.
    """

    def __init__(self, tts: TTS, workers: int = 1, max_queue: int = 4, wait_seconds: float = 120.0) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_queue}")
        self.workers, self.max_queue, self.wait_seconds = workers, max_queue, wait_seconds
        self._idle: queue.Queue[TTS] = queue.Queue()
        self._idle.put(tts)
        for _ in range(workers - 1):
            self._idle.put(copy.deepcopy(tts))
        self._admitted = threading.Semaphore(workers + max_queue)
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet finished (running or waiting)."""
        return self._in_flight

    def admit(self) -> Admission:
        """Take a place in the pool or raise :class:`Overloaded` at once. Release it with ``Admission.release``
        (or use it as a context manager); a started stream releases it when it ends or is closed."""
        if not self._admitted.acquire(blocking=False):
            raise Overloaded(f"the server is busy ({self.workers} workers, {self.max_queue} waiting); retry later")
        with self._lock:
            self._in_flight += 1
        return Admission(self)

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1
        self._admitted.release()

    @contextlib.contextmanager
    def worker(self) -> Iterator[TTS]:
        """A replica for the duration of the block (call only while admitted).

        Raises:
            Overloaded: no worker became free within ``wait_seconds``.
        """
        try:
            tts = self._idle.get(timeout=self.wait_seconds)
        except queue.Empty:
            raise Overloaded(f"no worker became free within {self.wait_seconds:g} s; retry later") from None
        try:
            yield tts
        finally:
            self._idle.put(tts)


class Admission:
    """One admitted request; :meth:`release` is idempotent so an error path and a finished stream cannot both free
    the same place."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._pool._release()

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
