"""A bounded worker pool for the CPU-heavy work of the HTTP API.

``workers`` threads run the jobs (ONNX Runtime and OpenCV release the GIL, so the event loop
stays responsive); at most ``workers + queue`` jobs are admitted at once. A job that finds the
pool full is refused at once with :class:`PoolFull` (the API answers 503 with Retry-After).
A caller waits at most ``timeout_s`` seconds (:class:`PoolTimeout`, the API answers 504); a job
that overran still holds its slot until its thread finishes, so the bound on running work is real.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class PoolFull(RuntimeError):
    """Every worker is busy and the queue is full."""


class PoolTimeout(TimeoutError):
    """A job did not finish within the time limit."""


@dataclass(frozen=True)
class PoolStats:
    """Workers, queue places, jobs admitted now (running or waiting) and jobs refused so far."""

    workers: int
    queue: int
    admitted: int
    refused: int


class WorkerPool:
    """``workers`` threads and room for ``queue`` waiting jobs; see the module docstring."""

    def __init__(self, workers: int, queue: int, timeout_s: float) -> None:
        if workers < 1 or queue < 0 or timeout_s <= 0:
            raise ValueError(f"need workers >= 1, queue >= 0, timeout > 0; got {workers}, {queue}, {timeout_s}")
        self.workers, self.queue, self.timeout_s = workers, queue, timeout_s
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="fetalhc-worker")
        self._lock = threading.Lock()
        self._admitted = 0
        self._refused = 0

    @property
    def capacity(self) -> int:
        return self.workers + self.queue

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(self.workers, self.queue, self._admitted, self._refused)

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.capacity:
                self._refused += 1
                raise PoolFull(f"the server is busy: all {self.workers} workers are measuring and {self.queue} "
                               "requests are waiting; try again in a few seconds")
            self._admitted += 1

    def _release(self, _fut: Future[Any]) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(self, fn: Callable[[], T], timeout_s: float | None = None) -> T:
        """Run ``fn()`` on a worker; raise :class:`PoolFull` at once when there is no room and
        :class:`PoolTimeout` after ``timeout_s`` (default: the pool's) seconds."""
        self._admit()
        try:
            cfut = self._executor.submit(fn)
        except BaseException:
            with self._lock:
                self._admitted -= 1
            raise
        cfut.add_done_callback(self._release)
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(cfut)), limit)
        except TimeoutError:
            cfut.cancel()  # drops it if it is still waiting; a running job finishes and then frees its slot
            raise PoolTimeout(f"the measurement took longer than the limit of {limit:g} s; try again later") from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
