"""Running a submission for nbgrader: in the sandbox, cell by cell, surviving what breaks.

:class:`GradingExecute` takes the place of nbgrader's ``Execute`` in
``c.Autograde.autograde_preprocessors`` (see ``nbgrader_config.py``). It runs the notebook's
kernel in the sandbox of :mod:`.sandbox` (through :class:`GradingKernelManager`) and runs the
code cells one by one. When a cell breaks the kernel, only that cell and its task pay:

- a cell that raises an error: nothing special, the error is the cell's output;
- a cell that runs past ``timeout`` (``c.Execute.timeout``, per cell) is interrupted; if the
  kernel ignores the interrupt (a loop that ignores SIGINT) the grader kills the kernel. When the
  sandbox's threads spent more of that time waiting for a CPU than running (another notebook, or
  another program, held the machine: Linux's per-task ``schedstat``), the timeout is not the
  learner's: the notebook is marked :data:`STARVED_KEY` in its metadata and graded again;
- a cell that kills the kernel (``os._exit``, a segfault, the memory cap): the grader notes why
  ("killed by signal SIGSEGV");
- a cell that prints more than ``max_cell_output_bytes`` (or takes the notebook past
  ``max_notebook_output_bytes``): the first bytes are kept with a marker, the rest is dropped as
  it comes, and the cell runs on and is graded as usual (an error output is always kept);
- a cell that leaves processes running (a fork bomb): the kernel is killed, and with it every
  process of its sandbox.

After a kernel is killed or died, the cell gets an error output (``CellStopped``) that says why
in plain words, the kernel is restarted, the setup and solution cells that ran cleanly before are
run again quietly (not the test cells, already graded), and grading goes on with the next cell.
A solution cell that stopped the kernel takes its task's test cell down with it: that test cell
is not run and gets an error output (``CellNotRun``) with the reason, so it scores 0.

The whole notebook has ``notebook_wall_seconds`` (kernel starts and restarts included); cells
left when that runs out are not run, each with the reason. Nothing here raises for what a
submission does, so nbgrader always records a score for every test cell (0 where it failed).

A kernel that cannot be sandboxed is not a submission's fault: :class:`GradingKernelManager`
raises :class:`.SandboxUnavailable`, and :func:`require_sandbox_before_grading`, nbgrader's
``pre_convert_hook`` in the course's config, stops ``nbgrader autograde`` with the reason before
it touches the gradebook, unless ``unsafe_no_sandbox`` is set (``c.SandboxedKernelManager``, or
:data:`.nbgrader_command.UNSAFE_ENVIRONMENT_VARIABLE` in nbgrader's environment). Nor is a
sandbox that cannot import the package (:func:`grading_import_problem`): the hook stops then too,
naming the folder the sandbox does not show, instead of scoring every task 0.
"""

from __future__ import annotations

import json
import math
import os
import sys
from queue import Empty
from time import monotonic
from typing import Any

from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Float, Int

from selfattn_course.grading.autograde import sandbox
from selfattn_course.grading.autograde.plain_files import unsafe_entries
from selfattn_course.grading.autograde.sandbox import MiB, SandboxUnavailable
from selfattn_course.grading.autograde.sandbox_kernel import SandboxedKernelManager
from selfattn_course.grading.notebooks import nbgrader_meta

#: Metadata key of an autograded notebook one of whose cells timed out while starved of CPU:
#: the list of the reasons. :mod:`selfattn_course.grading.classroom.units` grades it again.
STARVED_KEY = "selfattn_course_starved"
#: A timed-out cell counts as starved when its sandbox waited for a CPU longer than it ran and
#: for at least this share of the cell's time limit.
STARVED_SHARE = 0.25

#: ``ename`` of the error output on a cell the grader stopped (timeout, dead kernel, output cap).
CELL_STOPPED = "CellStopped"
#: ``ename`` of the error output on a cell the grader did not run (time is up, its solution broke).
CELL_NOT_RUN = "CellNotRun"
#: Seconds the sandbox's own wall-clock cap leaves after the notebook's, as a backstop.
KERNEL_WALL_GRACE = 5.0
#: Seconds to wait for a restarted kernel to answer.
RESTART_TIMEOUT = 60
#: Run quietly in each fresh kernel of a grading run before the learner's first cell; it binds no
#: name in the learner's namespace.
ARM_SOURCE = "__import__('selfattn_course.grading.cell', fromlist=['arm']).arm()"


class GradingKernelManager(SandboxedKernelManager):
    """The sandboxed kernel manager, with the kernel's Python started as ``python -P``.

    ``-P`` keeps the working directory (a copy of the student's folder) off ``sys.path``, so a
    ``selfattn_course.py`` or ``torch.py`` there cannot stand in for the real package. Its limits
    are configured as ``c.SandboxedKernelManager.*``.
    """

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        if command and os.path.basename(command[0]).startswith("python") and "-P" not in command:
            command.insert(1, "-P")
        return command


def require_sandbox_before_grading(**_hook_arguments: Any) -> None:
    """nbgrader's ``Autograde.pre_convert_hook``: stop before grading anything when no sandbox can
    be made here (and ``unsafe_no_sandbox`` is off), or when a sandboxed kernel could not import
    the package and its tasks (:func:`grading_import_problem`), saying why and how to fix it.

    It runs before nbgrader writes the submission into the gradebook or ``autograded/``, so
    nothing is left half graded. It raises ``SystemExit`` because nbgrader catches every
    ``Exception`` a hook raises and carries on.
    """
    config = _running_config()
    if not GradingKernelManager(config=config).unsafe_no_sandbox:
        available, why_not = sandbox.sandbox_available()
        if not available:
            _stop(f"cannot sandbox student code: {why_not}")
    problem = grading_import_problem(config)
    if problem is not None:
        _stop(problem)


def name_unnamed_learners(**_hook_arguments: Any) -> None:
    """nbgrader's ``Autograde.post_convert_hook``: every learner of the gradebook with no name
    gets their id as first name, so the formgrader lists "alice" where it showed "None, None".

    ``nbgrader autograde`` adds a learner it grades for the first time with no name;
    ``selfattn-course grade`` names them itself, and this does the same for plain ``nbgrader
    autograde`` and the formgrader's Autograde button. An instructor's names stay.
    """
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    with Gradebook(CourseDirectory(config=_running_config()).db_url) as gradebook:
        for learner in gradebook.students:
            if learner.first_name is None and learner.last_name is None:
                gradebook.update_or_create_student(learner.id, first_name=learner.id)


def grading_import_problem(config: Any) -> str | None:
    """Why the sandboxed kernels ``config`` (a traitlets ``Config``: the course's) makes could
    not import ``selfattn_course`` and its tasks, with the folder and the fix; None when they
    can, or when kernels run without a sandbox. Asked once per process and sandbox."""
    manager = GradingKernelManager(config=config)
    return manager.package_import_problem() if manager.sandboxed else None


def _stop(reason: str) -> None:
    print(f"nbgrader autograde stopped before grading: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def _running_config():
    """The configuration of the running nbgrader command (its config file and command line)."""
    from traitlets.config import Application, Config

    if Application.initialized():
        return Application.instance().config
    return Config()  # pragma: no cover - hooks only run inside nbgrader


class GradingExecute(Execute):
    """nbgrader's ``Execute`` that sandboxes the kernel and survives broken cells (module doc).

    Configure it as ``c.GradingExecute.*``; ``c.Execute.timeout`` (seconds per cell) applies too.
    """

    notebook_wall_seconds = Float(
        600.0,
        help="Seconds the whole notebook may take, kernel (re)starts included; cells left when "
        "they run out are not run and score 0.",
    ).tag(config=True)
    max_cell_output_bytes = Int(
        4 * MiB,
        help="Output one cell may keep; past it the rest of its output is dropped (a marker "
        "says so) and the cell runs on.",
    ).tag(config=True)
    max_notebook_output_bytes = Int(
        16 * MiB,
        help="Output the whole notebook may keep; past it, as for one cell.",
    ).tag(config=True)
    max_restarts = Int(
        10, help="Kernel restarts per notebook; after that the cells left are not run."
    ).tag(config=True)

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("kernel_manager_class", GradingKernelManager)
        super().__init__(**kw)

    # --- the notebook, cell by cell -------------------------------------------------------------

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):
        """Run every code cell of ``nb`` (in place); never raises for what a cell does."""
        from nbclient import NotebookClient

        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        refusal = self._submission_refusal()
        if refusal is not None:
            self.log.warning("Not running the notebook: %s", refusal)
            for cell in self.nb.cells:
                if cell.cell_type == "code":
                    _record(cell, CELL_NOT_RUN, f"not run: {refusal}")
            return self.nb, self.resources
        run_sync(self._async_grade_notebook)()
        self.set_widgets_metadata()
        return self.nb, self.resources

    def _submission_refusal(self) -> str | None:
        """Why the submission must not run at all: its folder in ``submitted/`` holds a link or
        another special file. nbgrader copied it into ``autograded/`` following links, so the
        "file" the kernel would see could be anything the grader may read (the solutions)."""
        from nbgrader.coursedir import CourseDirectory

        names = (self.resources or {}).get("nbgrader", {})
        if not names.get("student") or not names.get("assignment"):
            return None  # not run by nbgrader autograde
        coursedir = CourseDirectory(config=self.config)
        folder = coursedir.format_path(
            coursedir.submitted_directory, names["student"], names["assignment"]
        )
        unsafe = unsafe_entries(folder) if os.path.isdir(folder) else []
        if not unsafe:
            return None
        return (
            f"the submission holds {', '.join(unsafe)}; only plain files and folders are "
            "accepted (a link could point at the course's files)"
        )

    async def _async_grade_notebook(self) -> None:
        self._deadline = monotonic() + self.notebook_wall_seconds
        self._notebook_output_bytes = self._cell_output_bytes = 0
        self._output_cut = self._cell_limit_hit = None
        self._restarts = 0
        self._kernel_gone: str | None = None  # why there is no kernel to run cells in
        if self.km is None:
            self.km = self.create_kernel_manager()
        self._kernel_wall_cap = getattr(self.km, "wall_seconds", None)
        self._fit_kernel_wall()
        code_cells = [
            (index, cell)
            for index, cell in enumerate(self.nb.cells)
            if cell.cell_type == "code" and cell.source.strip()
        ]
        done = 0
        try:
            async with self.async_setup_kernel():
                await self._async_kernel_info()
                await self._async_arm()
                self._baseline_processes = self._sandbox_process_count()
                replay: list[str] = []  # the setup and solution cells that ran cleanly
                skip_reason: str | None = None  # why the next test cell is not run
                for index, cell in code_cells:
                    done += 1
                    graded = bool(nbgrader_meta(cell).get("grade"))
                    reason = self._why_not_run()
                    if reason is None and graded:
                        reason, skip_reason = skip_reason, None
                    if reason is not None:
                        _record(cell, CELL_NOT_RUN, f"not run: {reason}")
                        continue
                    stopped = await self._async_run_cell(cell, index)
                    if stopped is None:
                        if not graded and not _has_error(cell):
                            replay.append(cell.source)
                        continue
                    self.log.warning("Cell %d stopped: %s", index, stopped)
                    _record(cell, CELL_STOPPED, stopped)
                    if not graded:
                        skip_reason = f"the solution cell before this test stopped: {stopped}"
                    await self._async_restart(replay)
        except SandboxUnavailable:
            raise
        except Exception as error:  # the kernel would not start, or the client broke
            self.log.error("Could not run the notebook: %s", error, exc_info=True)
            for _, cell in code_cells[max(0, done - 1) :]:
                _record(cell, CELL_NOT_RUN, f"not run: the kernel failed ({error})")

    async def _async_arm(self) -> None:
        """In a fresh kernel of a grading run, before any of the learner's code: install the
        tripwires (:func:`selfattn_course.grading.cell.arm`). If that fails, nothing more runs in
        this notebook (its cells are recorded as not run, with the reason): grading without the
        tripwires would let a forbidden call earn points."""
        from selfattn_course.grading.verdicts.handover import HANDOVER_FILE

        folder = (self.resources or {}).get("metadata", {}).get("path") or "."
        if self._kernel_gone is not None or not os.path.isfile(os.path.join(folder, HANDOVER_FILE)):
            return  # not a grading run (no prepared cases): nothing to arm
        if not await self._async_run_quietly(ARM_SOURCE):
            self.log.error("Could not arm the grading kernel (%s)", ARM_SOURCE)
            self._kernel_gone = "the grader could not install its checks in the kernel"

    def _why_not_run(self) -> str | None:
        if self._remaining() <= 0:
            return (
                f"the notebook used up its time limit of {self.notebook_wall_seconds:g} s "
                "(c.GradingExecute.notebook_wall_seconds)"
            )
        return self._kernel_gone

    async def _async_kernel_info(self) -> None:
        assert self.kc is not None
        reply = await self.async_wait_for_reply(await ensure_async(self.kc.kernel_info()))
        if reply is not None and "language_info" in reply["content"]:
            self.nb.metadata["language_info"] = reply["content"]["language_info"]

    async def _async_run_cell(self, cell: NotebookNode, index: int) -> str | None:
        """Run one cell; None when it ended on its own (with or without an error), else why the
        grader stopped it. Afterwards the kernel is alive and idle, or dead."""
        self._cell_output_bytes = 0
        self._output_cut: str | None = None  # why this cell's output was cut, if it was
        self._cell_limit_hit: str | None = None
        self._cell_schedstat = self._sandbox_schedstat()
        try:
            await self.async_execute_cell(cell, index, store_history=True)
        except (CellTimeoutError, DeadKernelError) as error:
            return self._stop_reason(error)
        _explain_timeout_first(cell)
        _explain_memory_error(cell, getattr(self.km, "memory_bytes", None))
        stray = self._sandbox_process_count() - self._baseline_processes
        if stray > 0:
            return (
                f"the cell left {stray} process{'es' if stray != 1 else ''} running "
                "(a fork bomb?); the kernel was restarted"
            )
        return None

    def _stop_reason(self, error: Exception) -> str:
        if self._cell_limit_hit is not None:
            return self._cell_limit_hit
        if isinstance(error, CellTimeoutError):
            return (
                f"the cell ran past its time limit of {self.timeout} s and did not stop when "
                "interrupted; the kernel was restarted"
            )
        exit_reason = self.km.exit_reason() if hasattr(self.km, "exit_reason") else None
        return f"the kernel died while running this cell: {exit_reason or 'it stopped answering'}"

    async def _async_restart(self, replay: list[str]) -> None:
        """Kill the kernel (and its sandbox), start a fresh one and replay ``replay`` quietly."""
        assert self.km is not None
        if self._restarts >= self.max_restarts:
            self._kernel_gone = f"the kernel was restarted {self.max_restarts} times already"
        if self._remaining() <= 0 or self._kernel_gone is not None:
            await ensure_async(self.km.shutdown_kernel(now=True))
            return
        self._restarts += 1
        if self.kc is not None:
            await ensure_async(self.kc.stop_channels())
        self._fit_kernel_wall()
        try:
            await ensure_async(self.km.restart_kernel(now=True))
            self.kc = self.km.client()
            await ensure_async(self.kc.start_channels())
            await ensure_async(
                self.kc.wait_for_ready(timeout=min(RESTART_TIMEOUT, max(1, self._remaining())))
            )
            self.kc.allow_stdin = False
        except SandboxUnavailable:
            raise
        except Exception as error:
            self.log.error("Could not restart the kernel: %s", error)
            self._kernel_gone = f"the kernel could not be restarted ({error})"
            if await ensure_async(self.km.is_alive()):
                await ensure_async(self.km.shutdown_kernel(now=True))
            return
        await self._async_arm()
        self._baseline_processes = self._sandbox_process_count()
        for source in replay:
            if not await self._async_run_quietly(source):
                break

    async def _async_run_quietly(self, source: str) -> bool:
        """Run ``source`` without recording anything; whether it finished without an error."""
        assert self.kc is not None
        msg_id = await ensure_async(self.kc.execute(source, silent=True, store_history=False))
        deadline = monotonic() + min(self.timeout or math.inf, self._remaining())
        while monotonic() < deadline:
            try:
                reply = await ensure_async(
                    self.kc.shell_channel.get_msg(
                        timeout=max(0.01, min(1.0, deadline - monotonic()))
                    )
                )
            except Empty:
                if not await ensure_async(self.km.is_alive()):
                    return False
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]["status"] == "ok"
        return False

    # --- limits ---------------------------------------------------------------------------------

    def _remaining(self) -> float:
        return self._deadline - monotonic()

    def _fit_kernel_wall(self) -> None:
        """The sandbox's own wall-clock cap: what is left of the notebook's, plus a grace, within
        the one configured for the kernel manager."""
        if not hasattr(self.km, "wall_seconds"):
            return
        cap = max(1.0, self._remaining()) + KERNEL_WALL_GRACE
        configured = self._kernel_wall_cap
        self.km.wall_seconds = cap if configured is None else min(configured, cap)

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        """The cell's timeout, never past the notebook's deadline."""
        timeout = super()._get_timeout(cell)
        if cell is None:
            return timeout
        remaining = max(1, math.ceil(self._remaining()))
        return remaining if timeout is None else min(timeout, remaining)

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None):
        if self._remaining() <= 0.5:
            self._cell_limit_hit = (
                f"the notebook used up its time limit of {self.notebook_wall_seconds:g} s while "
                "this cell ran; the kernel was stopped"
            )
            raise CellTimeoutError.error_from_timeout_and_cell("Notebook time limit", timeout, cell)
        self.log.warning("Cell past its %s s limit: interrupting the kernel", timeout)
        self._note_starvation(timeout)
        assert self.km is not None
        await ensure_async(self.km.interrupt_kernel())
        return {
            "content": {
                "status": "error",
                "ename": "CellTimeoutError",
                "evalue": f"the cell ran past its time limit of {timeout} s and was interrupted",
                "traceback": [
                    f"CellTimeoutError: the cell ran past its time limit of {timeout} s and was "
                    "interrupted"
                ],
            }
        }

    def output(self, outs, msg, display_id, cell_index):
        """Keep a cell's outputs under the byte caps; past one, keep the first bytes and a
        marker, drop the rest and let the cell run on. An error is always kept (trimmed to
        :data:`MAX_ERROR_CHARS` per field): it is what scores a test cell 0."""
        content = msg.get("content", {})
        if msg.get("msg_type") == "error":
            trimmed = dict(msg, content=_bounded_error(content))
            return super().output(outs, trimmed, display_id, cell_index)
        if self._output_cut is not None:
            return None
        size = _content_bytes(content)
        cell_room = self.max_cell_output_bytes - self._cell_output_bytes
        notebook_room = self.max_notebook_output_bytes - self._notebook_output_bytes
        if size <= min(cell_room, notebook_room):
            self._cell_output_bytes += size
            self._notebook_output_bytes += size
            return super().output(outs, msg, display_id, cell_index)
        cap, what = (
            (self.max_cell_output_bytes, "this cell")
            if cell_room <= notebook_room
            else (self.max_notebook_output_bytes, "the notebook")
        )
        room = max(0, min(cell_room, notebook_room))
        if msg["msg_type"] == "stream" and room > 0:
            head = dict(msg, content=dict(content, text=content["text"][:room]))
            super().output(outs, head, display_id, cell_index)
        self._cell_output_bytes += room
        self._notebook_output_bytes += room
        self._output_cut = f"{what} printed more than its output limit of {_size(cap)}"
        self.log.warning(
            "Cell %d: %s; the rest of its output was dropped", cell_index, self._output_cut
        )
        outs.append(
            NotebookNode(
                output_type="stream",
                name="stdout",
                text=f"\n... output cut at {_size(cap)}: {self._output_cut}; the rest of this "
                "cell's output was not kept (the cell ran on, and is graded as usual) ...\n",
            )
        )
        return None

    def _update_display_id(self, display_id: str, msg: dict) -> None:
        """An ``update_display_data`` replaces outputs kept earlier (in this cell or others), so
        :meth:`output` never sees it: count it against the notebook's cap, once for each output
        it replaces, and drop it past the cap (the outputs keep their earlier, small data)."""
        targets = self._display_id_map.get(display_id, {})
        size = _content_bytes(msg.get("content", {})) * max(
            1, sum(len(indices) for indices in targets.values())
        )
        room = self.max_notebook_output_bytes - self._notebook_output_bytes
        if size > min(room, self.max_cell_output_bytes):
            self.log.warning(
                "A display update of %s was dropped: past the output limits", _size(size)
            )
            return None
        self._notebook_output_bytes += size
        return super()._update_display_id(display_id, msg)

    def _note_starvation(self, timeout: float) -> None:
        """Record in the notebook's metadata that the cell timed out starved of CPU, if it did."""
        ran, waited = (
            now - then
            for now, then in zip(self._sandbox_schedstat(), self._cell_schedstat, strict=True)
        )
        if not starved(ran, waited, timeout):
            return
        reason = (
            f"a cell ran past its {timeout:g} s limit while the machine was too busy: its "
            f"sandbox waited {waited:.1f} s for a CPU and ran {ran:.1f} s"
        )
        self.log.warning("%s; the notebook will be graded again", reason)
        self.nb.metadata.setdefault(STARVED_KEY, []).append(reason)

    def _sandbox_schedstat(self) -> tuple[float, float]:
        """Seconds every thread of the sandbox has run, and waited runnable for a CPU, so far
        (Linux ``/proc/<pid>/task/<tid>/schedstat``; (0, 0) where unknown)."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is None or not os.path.isdir("/proc"):
            return 0.0, 0.0
        ran = waited = 0
        for pid in {process.pid, *_descendants(process.pid)}:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tasks:
                try:
                    with open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
                        run_ns, wait_ns, *_ = stat.read().split()
                except (OSError, ValueError):
                    continue
                ran, waited = ran + int(run_ns), waited + int(wait_ns)
        return ran / 1e9, waited / 1e9

    def _sandbox_process_count(self) -> int:
        """Processes the kernel and its sandbox hold now (zombies aside); 0 where unknown."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is None or not os.path.isdir("/proc"):
            return 0
        return len(_descendants(process.pid))


def starved(ran: float, waited: float, timeout: float) -> bool:
    """Whether a cell that timed out was starved of CPU: its sandbox's threads waited, runnable,
    longer than they ran, and for at least :data:`STARVED_SHARE` of the time limit. A cell that
    sleeps neither runs nor waits (not starved); one that loops alone mostly runs."""
    return waited > ran and waited >= STARVED_SHARE * timeout


def _descendants(root: int) -> set[int]:
    """Every live (not zombie) process below ``root``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _explain_timeout_first(cell: NotebookNode) -> None:
    """After an interrupted cell, show the timeout before the ``KeyboardInterrupt`` it caused."""
    outputs = cell.get("outputs", [])
    timeouts = [o for o in outputs if o.get("ename") == "CellTimeoutError"]
    if timeouts:
        outputs.remove(timeouts[0])
        _insert_before_first_error(outputs, timeouts[0])


def _explain_memory_error(cell: NotebookNode, memory_bytes: int | None) -> None:
    """Say what a bare ``MemoryError`` means here: the sandbox's memory cap."""
    for output in cell.get("outputs", []):
        if output.get("ename") == "MemoryError" and not output.get("evalue") and memory_bytes:
            output["evalue"] = (
                f"past the memory limit of {_size(memory_bytes)} per process "
                "(c.SandboxedKernelManager.memory_bytes)"
            )
            output["traceback"] = [
                *output.get("traceback", [])[:-1],
                f"MemoryError: {output['evalue']}",
            ]


#: Characters kept of an error's ``evalue`` and of each of its last traceback lines.
MAX_ERROR_CHARS = 2000
#: Traceback lines kept of an error (the last ones, where the error is).
MAX_TRACEBACK_LINES = 30


def _bounded_error(content: dict) -> dict:
    """An error message's content with its value and traceback cut to bounded sizes."""
    traceback = [str(line)[:MAX_ERROR_CHARS] for line in content.get("traceback", [])]
    return dict(
        content,
        ename=str(content.get("ename", ""))[:200],
        evalue=str(content.get("evalue", ""))[:MAX_ERROR_CHARS],
        traceback=traceback[-MAX_TRACEBACK_LINES:],
    )


def _content_bytes(content: dict) -> int:
    """About how many bytes an output message adds to the notebook."""
    if "text" in content:
        return len(content["text"].encode("utf-8", "replace"))
    return len(json.dumps(content, default=str))


def _size(count: int) -> str:
    if count >= 1024 * MiB:
        return f"{count / (1024 * MiB):g} GiB"
    return f"{count / MiB:g} MiB" if count >= MiB else f"{count} bytes"


def _has_error(cell: NotebookNode) -> bool:
    return any(output.get("output_type") == "error" for output in cell.get("outputs", []))


def _record(cell: NotebookNode, ename: str, reason: str) -> None:
    """Add an error output saying ``reason``: what the feedback shows, and it scores the cell 0.
    It goes before the cell's first error, so whoever reads "the error" reads the reason."""
    error = NotebookNode(
        output_type="error", ename=ename, evalue=reason, traceback=[f"{ename}: {reason}"]
    )
    _insert_before_first_error(cell.setdefault("outputs", []), error)


def _insert_before_first_error(outputs: list, error: NotebookNode) -> None:
    errors = [i for i, output in enumerate(outputs) if output.get("output_type") == "error"]
    outputs.insert(errors[0] if errors else len(outputs), error)
