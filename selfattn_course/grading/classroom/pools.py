"""Where batches of units are graded: local worker threads, or a Dask cluster.

A pool's ``grade(units, context, on_result)`` cuts the units into batches (:func:`.make_batches`),
grades each with ``grade`` (:func:`.units.grade_units` unless a test passes a stand-in), and
calls ``on_result(result, attempt)`` in the caller's thread for every result: the final one of
each unit, and each failed attempt that will be tried again. The retry rule is the same for
both: a unit that failed (its process killed or crashed, or nbgrader could not grade it) gets
one more attempt, alone, then scores 0 with the reason.

- :class:`LocalPool`: ``workers`` threads, each driving one ``nbgrader autograde`` process at a
  time. ``selfattn-course grade`` uses one worker, ``--workers N`` N of them.
- :class:`DaskPool`: the same batches through ``distributed``'s ``Client`` (``--scheduler``); a
  worker that dies has its batch rerun elsewhere by the scheduler. A batch that kills two
  workers (start the scheduler with ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1``) comes
  back as ``KilledWorker``, and its units are tried again one by one; a single unit that kills
  two workers scores 0 with the reason. Dask blames every task a dying worker was processing, so
  the README also sets ``WORKER_SATURATION=1.0`` (and each worker runs one thread): a worker then
  holds only the batch it is grading, and no bystander is blamed.

:func:`pool_for` picks the pool the command line asks for; :func:`default_workers` picks N for
``--workers`` alone: the cores, lowered so that N kernels at the memory cap
(``c.SandboxedKernelManager.memory_bytes``) fit in the machine's memory.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from selfattn_course.grading.classroom.course import load_config
from selfattn_course.grading.classroom.units import (
    MAX_BATCH,
    GradingContext,
    Unit,
    UnitResult,
    grade_units,
    make_batches,
)

#: Attempts a unit gets before it scores 0 (its grading failed each time).
ATTEMPTS = 2
#: Times a unit whose finished result was lost with its Dask worker is resubmitted.
LOST_RESULT_RETRIES = 3
#: Memory cap per kernel when the course's config sets none (the sandbox's default).
DEFAULT_MEMORY_BYTES = 2 * 1024**3

OnResult = Callable[[UnitResult, int], None]
GradeBatch = Callable[[Sequence[Unit], GradingContext], list[UnitResult]]


def _after_batch(
    batch: Sequence[Unit],
    batch_attempt: int,
    results: Sequence[UnitResult],
    on_result: OnResult,
    resubmit: Callable[[list[Unit], int], None],
) -> None:
    """The retry rule, shared by the pools: a unit that failed, or was graded starved of CPU,
    gets one more attempt, alone.
    ``results`` are the batch's, in its order (as :func:`.grade_units` returns them)."""
    for unit, result in zip(batch, results, strict=True):
        on_result(result, batch_attempt)
        if result.worth_retrying and batch_attempt < ATTEMPTS:
            resubmit([unit], batch_attempt + 1)


class LocalPool:
    """``workers`` threads, each driving one ``nbgrader autograde`` process at a time, which
    grades a batch of at most ``max_batch`` units (None: a chapter's units, however many); a unit
    that failed is retried once, alone."""

    def __init__(
        self,
        workers: int = 1,
        grade: GradeBatch = grade_units,
        *,
        max_batch: int | None = MAX_BATCH,
    ):
        self.workers = workers
        self.grade_batch = grade
        self.max_batch = max_batch
        self.description = f"{workers} local worker{'s' if workers != 1 else ''}"

    def grade(self, units: Sequence[Unit], context: GradingContext, on_result: OnResult) -> None:
        """Grade ``units``; ``on_result(result, attempt)`` (in this thread) for each final result,
        and for each failed attempt that will be retried (``result.ok`` False, attempt 1)."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        executor = ThreadPoolExecutor(self.workers, thread_name_prefix="grade")
        pending = {}

        def submit(batch: list[Unit], attempt: int) -> None:
            pending[executor.submit(self.grade_batch, batch, context)] = (batch, attempt)

        for batch in make_batches(units, self.workers, most=self.max_batch):
            submit(batch, 1)
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    batch, attempt = pending.pop(future)
                    _after_batch(batch, attempt, future.result(), on_result, submit)
        finally:
            executor.shutdown(wait=not pending, cancel_futures=True)


class DaskPool:
    """The units on a Dask distributed cluster (a ``Client`` on ``address``, or one given), in
    batches as :class:`LocalPool` cuts them, one task per batch.

    ``grade`` is sent to the workers (by reference: they must be able to import it).
    """

    def __init__(
        self,
        address: str | None = None,
        client=None,
        grade: GradeBatch = grade_units,
        *,
        max_batch: int | None = MAX_BATCH,
    ):
        self.address = address
        self.client = client
        self.grade_batch = grade
        self.max_batch = max_batch
        self.description = f"the Dask cluster at {address}" if address else "a Dask cluster"

    def grade(self, units: Sequence[Unit], context: GradingContext, on_result: OnResult) -> None:
        from distributed import Client, as_completed
        from distributed.scheduler import KilledWorker

        client = self.client or Client(self.address)
        try:
            futures = {}
            # Each batch carries the context itself (tens of kB to a few MB), so batches depend
            # on no other task: lost scattered data cannot cancel them, and no batch is placed
            # next to another for locality. At most ``limit`` batches are on the cluster at
            # once, so the scheduler holds a bounded number of contexts.
            slots = sum(client.nthreads().values())
            batches = make_batches(units, slots, most=self.max_batch)
            waiting = deque((batch, 1) for batch in batches)
            limit = max(4, 2 * slots)

            def submit(batch: list[Unit], attempt: int):
                key = f"grade-{batch[0].name}-{len(batch)}-{attempt}-{os.urandom(4).hex()}"
                future = client.submit(self.grade_batch, batch, context, pure=False, key=key)
                futures[future] = (batch, attempt)
                return future

            # Results are fetched as soon as each batch finishes: a result still held by a
            # worker that then dies is lost (its future is cancelled), and is graded again.
            first = [submit(*waiting.popleft()) for _ in range(min(limit, len(waiting)))]
            queue = as_completed(first, with_results=True, raise_errors=False)
            lost: dict[str, int] = {}
            for future, outcome in queue:
                batch, attempt = futures.pop(future)
                if future.status == "error" and isinstance(outcome[1], KilledWorker):
                    if len(batch) > 1:  # which of them killed it? Each gets its own try, alone
                        waiting.extendleft(([unit], attempt) for unit in batch)
                    else:  # the scheduler retried it already: this was its last attempt
                        reason = f"grading it killed its worker process twice ({outcome[1]})"
                        on_result(self._failed(batch[0], reason), ATTEMPTS)
                elif future.status == "error":  # grade_units itself raised: the grader is broken
                    raise outcome[1].with_traceback(outcome[2])
                elif isinstance(outcome, BaseException):  # cancelled: its result was lost
                    key = batch[0].name
                    lost[key] = lost.get(key, 0) + 1
                    if lost[key] <= LOST_RESULT_RETRIES:
                        waiting.appendleft((batch, attempt))
                    else:
                        reason = f"its result was lost {lost[key]} times ({outcome!r})"
                        for unit in batch:
                            on_result(self._failed(unit, reason), ATTEMPTS)
                else:
                    _after_batch(
                        batch,
                        attempt,
                        outcome,
                        on_result,
                        lambda again, n: waiting.appendleft((again, n)),
                    )
                while waiting and len(futures) < limit:
                    queue.add(submit(*waiting.popleft()))
        finally:
            if self.client is None:
                client.close()

    @staticmethod
    def _failed(unit: Unit, reason: str) -> UnitResult:
        return UnitResult(unit.student, unit.chapter, unit.files_sha256, ok=False, reason=reason)


# --- how many workers ----------------------------------------------------------------------------


def memory_cap_bytes(course_dir: str | Path) -> int:
    """``c.SandboxedKernelManager.memory_bytes`` of the course's config (or the default)."""
    config = load_config(course_dir)
    return int(config.SandboxedKernelManager.get("memory_bytes", DEFAULT_MEMORY_BYTES))


def machine_memory_bytes() -> int:
    """Total physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(memory_cap: int, *, cores: int | None = None, memory: int | None = None) -> int:
    """The cores, lowered so that that many kernels at ``memory_cap`` bytes fit in ``memory``."""
    cores = usable_cores() if cores is None else cores
    memory = machine_memory_bytes() if memory is None else memory
    return max(1, min(cores, memory // max(1, memory_cap)))


def pool_for(
    course_dir: str | Path, workers: str | None = None, scheduler: str | None = None
) -> tuple[LocalPool | DaskPool, str]:
    """The pool ``selfattn-course grade`` asks for, and a line saying how it was chosen ("" when
    there is nothing to say): ``scheduler`` a Dask cluster; ``workers`` ``"auto"``
    (:func:`default_workers`) or a number; neither, one local worker.

    Raises:
        ValueError: ``workers`` is not a number of at least 1.
    """
    if scheduler is not None:
        return DaskPool(scheduler), ""
    if workers is None:
        return LocalPool(1), ""
    if workers == "auto":
        cap = memory_cap_bytes(course_dir)
        count = default_workers(cap)
        note = (
            f"grading with {count} worker(s): {usable_cores()} cores, "
            f"{machine_memory_bytes() / 2**30:.1f} GiB of memory, "
            f"{cap / 2**30:g} GiB per kernel (c.SandboxedKernelManager.memory_bytes)"
        )
        return LocalPool(count), note
    try:
        count = int(workers)
    except ValueError:
        raise ValueError(f"--workers takes a number, got {workers!r}") from None
    if count < 1:
        raise ValueError(f"--workers takes a number >= 1, got {count}")
    return LocalPool(count), ""
