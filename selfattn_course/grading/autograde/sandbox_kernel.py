"""A Jupyter kernel manager that starts each kernel inside the sandbox of :mod:`.sandbox`.

Use it wherever a kernel manager class or instance is accepted::

    from nbclient import NotebookClient
    from selfattn_course.grading.autograde.sandbox_kernel import SandboxedKernelManager

    km = SandboxedKernelManager(kernel_name="python3", memory_bytes=2 << 30, wall_seconds=300)
    client = NotebookClient(nb, km=km, resources={"metadata": {"path": notebook_folder}})
    client.execute(cleanup_kc=True)  # a km passed in is the caller's: end its kernel explicitly

or, from a traitlets configuration (``nbgrader_config.py``, nbconvert), where each limit is a
configurable trait::

    from selfattn_course.grading.autograde.sandbox_kernel import SandboxedKernelManager
    c.NotebookClient.kernel_manager_class = SandboxedKernelManager
    c.SandboxedKernelManager.memory_bytes = 2 << 30
    c.SandboxedKernelManager.wall_seconds = 600

nbgrader's ``Execute`` preprocessor (0.9) passes ``kernel_manager_class=AsyncKernelManager`` to
its constructor, which beats any configuration: use a subclass that passes this class instead.
The limits still come from the configuration (``c.SandboxedKernelManager.*``), and the folder
``c.CourseDirectory.root`` names is hidden too.

Per kernel, the manager makes a scratch folder (under ``scratch_root``) holding

- ``work/``: a copy of the notebook's folder (the ``cwd`` nbclient passes), the kernel's
  working directory (``/home/student/work`` inside); what the code writes there is discarded;
- ``connection/``: the connection file and the kernel's sockets. The kernel has no network (not
  even the host's loopback), so it talks to the grader over Unix sockets (``transport="ipc"``)
  in this folder, which the sandbox shares;
- ``kernel.log``: what the sandbox and the kernel process print outside of cells (bwrap's errors,
  a crash's last words); :meth:`SandboxedKernelManager.kernel_log`.

The scratch folder is removed when the kernel is cleaned up. A dead kernel (``os._exit``, a
segfault, the wall-clock cap) is seen by nbclient as ``DeadKernelError``;
:meth:`SandboxedKernelManager.exit_reason` then says what happened.

Before grading, :meth:`SandboxedKernelManager.package_import_problem` starts the kernel's Python
once in the same sandbox and imports what a test cell needs (:data:`GRADING_IMPORTS`): a sandbox
that cannot see the package (an editable install from a folder it does not show) would otherwise
score every task 0, with a ``NameError`` that blames the learner.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Float, Int, List, Unicode

from selfattn_course.grading.autograde import sandbox
from selfattn_course.grading.autograde.sandbox import (
    SYSTEM_DIRS,
    SandboxConfig,
    SandboxUnavailable,
    default_hidden_paths,
    default_readonly_paths,
    fresh_uid,
    launch_env,
    require_sandbox,
    runs_privileged,
    wrap_command,
)

LOG_TAIL_BYTES = 4096
#: What a test cell needs inside the sandbox (``check`` and the tripwires), and what it must not
#: find there (the task modules, with the references and expected answers).
GRADING_IMPORTS = (
    "import importlib.util\n"
    "import selfattn_course.grading.cell\n"
    "import selfattn_course.grading.tripwires\n"
    "if importlib.util.find_spec('selfattn_course.grading.tasks.ch01') is not None:\n"
    "    raise SystemExit('the sandbox shows the grader task modules (selfattn_course/grading/"
    "tasks): keep that folder in c.SandboxedKernelManager.hidden_paths')\n"
)
#: Where the kernel's Python finds the package, asked outside the sandbox (prints the folder).
FIND_PACKAGE = (
    "import importlib.util\n"
    "spec = importlib.util.find_spec('selfattn_course')\n"
    "print(spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else '')"
)
#: Seconds the import probe may take (torch's import included).
IMPORT_PROBE_SECONDS = 120
# A Unix socket's path is at most 107 bytes; the kernel's are "<scratch>/connection/kernel-ipc-N".
MAX_SCRATCH_PATH = 70


class SandboxedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels run in a sandbox (:mod:`.sandbox`).

    Starting a kernel raises :class:`.SandboxUnavailable` (why, and how to fix it) when no
    sandbox can be made here, unless ``unsafe_no_sandbox`` is set.
    """

    memory_bytes = Int(
        SandboxConfig.memory_bytes, help="Address space of each process in the sandbox, bytes."
    ).tag(config=True)
    max_processes = Int(
        SandboxConfig.max_processes, help="Processes and threads the sandbox may hold at once."
    ).tag(config=True)
    wall_seconds = Float(
        SandboxConfig.wall_seconds,
        allow_none=True,
        help="Seconds the whole kernel may live (None: no cap); then everything in it is killed.",
    ).tag(config=True)
    network = Bool(False, help="Give the kernel the host's network (off: none at all).").tag(
        config=True
    )
    max_file_bytes = Int(
        SandboxConfig.max_file_bytes, help="Largest file the kernel may write, bytes."
    ).tag(config=True)
    tmpfs_bytes = Int(
        SandboxConfig.tmpfs_bytes, help="Size of each of the private /tmp, $HOME and /dev/shm."
    ).tag(config=True)
    cpu_threads = Int(
        SandboxConfig.cpu_threads, help="OMP/MKL/OpenBLAS thread count inside the sandbox."
    ).tag(config=True)
    cpu_seconds = Int(
        SandboxConfig.cpu_seconds,
        allow_none=True,
        help="CPU seconds each process of the kernel may use, its threads together (None: no "
        "cap); past it the process is killed.",
    ).tag(config=True)
    niceness = Int(
        SandboxConfig.niceness, help="How much lower the kernel's CPU priority is (nice, 0-19)."
    ).tag(config=True)
    readonly_paths = List(
        Unicode(),
        help="More host paths the kernel may read, besides Python and the selfattn_course package.",
    ).tag(config=True)
    hidden_paths = List(
        Unicode(),
        help="More host paths to hide, besides Jupyter's config folders and, when the config "
        "sets it, nbgrader's CourseDirectory.root.",
    ).tag(config=True)
    scratch_root = Unicode(
        "",
        help="Folder for the kernels' scratch folders (default: the system's temporary folder). "
        "Put it on a small dedicated file system to cap what kernels can write in total.",
    ).tag(config=True)
    unsafe_no_sandbox = Bool(
        False,
        help="Run kernels WITHOUT a sandbox when none can be made. Only for code you trust.",
    ).tag(config=True)

    _scratch: Path | None = None
    _sandbox_uid: int | None = None
    _started_at: float | None = None
    _exit_status: int | None = None
    _exit_after: float | None = None
    _log_tail: str = ""

    @property
    def sandboxed(self) -> bool:
        """Whether kernels run in the sandbox (False only with ``unsafe_no_sandbox`` on a machine
        where no sandbox can be made)."""
        return not self.unsafe_no_sandbox or sandbox.sandbox_available()[0]

    def sandbox_config(
        self, workdir: str | None = None, shared: tuple[str, ...] = ()
    ) -> SandboxConfig:
        """The :class:`.SandboxConfig` these traits describe (defaults plus the extra paths)."""
        course_root = self.config.get("CourseDirectory", {}).get("root")
        hidden = (
            *default_hidden_paths(),
            *([course_root] if course_root else []),
            *self.hidden_paths,
        )
        return SandboxConfig(
            memory_bytes=self.memory_bytes,
            max_processes=self.max_processes,
            wall_seconds=self.wall_seconds,
            network=self.network,
            max_file_bytes=self.max_file_bytes,
            tmpfs_bytes=self.tmpfs_bytes,
            cpu_threads=self.cpu_threads,
            cpu_seconds=self.cpu_seconds,
            niceness=self.niceness,
            workdir=workdir,
            shared_paths=shared,
            readonly_paths=(*default_readonly_paths(), *self.readonly_paths),
            hidden_paths=tuple(os.path.abspath(path) for path in hidden),
            sandbox_uid=self._sandbox_uid,
        )

    async def _async_pre_start_kernel(self, **kw):
        if not self.sandboxed:
            self.log.warning("Running the kernel WITHOUT a sandbox (unsafe_no_sandbox)")
            return await super()._async_pre_start_kernel(**kw)
        require_sandbox()
        notebook_dir = kw.pop("cwd", None)
        if self._scratch is None:  # a restart keeps the scratch folder
            self._scratch = self._make_scratch(notebook_dir)
        try:
            kernel_cmd, kw = await self._prepare_sandboxed_start(**kw)
        except BaseException:
            _remove_tree(self._scratch)
            self._scratch = self._sandbox_uid = None
            raise
        return kernel_cmd, kw

    async def _prepare_sandboxed_start(self, **kw):
        connection = self._scratch / "connection"
        self.transport = "ipc"
        self.connection_file = str(connection / "kernel.json")
        self.ip = str(connection / "kernel-ipc")

        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        self._check_interpreter_visible(kernel_cmd[0])
        # A signal would reach bwrap, which dies of it (and the kernel with it): ask instead.
        self.kernel_spec.interrupt_mode = "message"
        if self._sandbox_uid is not None:
            _chown_tree(self._scratch, self._sandbox_uid)
        config = self.sandbox_config(str(self._scratch / "work"), (str(connection),))
        config = _with_kernel_env(config, self.kernel_spec.env)
        kw["cwd"] = str(self._scratch)
        kw["stdin"] = subprocess.DEVNULL
        kw["stdout"] = open(self._scratch / "kernel.log", "ab")  # closed after the launch
        kw["stderr"] = subprocess.STDOUT
        kw["env"] = launch_env()  # bwrap keeps its own environment: give it none of the grader's
        self._exit_status = self._exit_after = None
        return wrap_command(kernel_cmd, config), kw

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        self._started_at = time.monotonic()
        try:
            await super()._async_launch_kernel(kernel_cmd, **kw)
        finally:
            log = kw.get("stdout")
            if hasattr(log, "close"):
                log.close()

    async def _async_is_alive(self) -> bool:
        alive = await super()._async_is_alive()
        if not alive:
            self._record_exit()
        return alive

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        self._record_exit()
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._scratch is not None:
            self._log_tail = self.kernel_log()
            try:
                _remove_tree(self._scratch)
            except OSError as error:
                self.log.warning("Could not remove the kernel's scratch folder: %s", error)
            self._scratch = None
            self._sandbox_uid = None

    _launch_kernel = _async_launch_kernel
    pre_start_kernel = _async_pre_start_kernel
    cleanup_resources = _async_cleanup_resources
    is_alive = _async_is_alive

    def kernel_log(self) -> str:
        """The end of what the sandbox and the kernel process printed outside of cells."""
        if self._scratch is None:
            return self._log_tail
        try:
            with open(self._scratch / "kernel.log", "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - LOG_TAIL_BYTES))
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def exit_reason(self) -> str | None:
        """Why the kernel died on its own, in words; None while it runs, before it starts, and
        when it was shut down on purpose."""
        status = self._exit_status
        if status is None:
            return None
        if status >= 128 or status < 0:
            signum = status - 128 if status >= 128 else -status
            wall = self.wall_seconds
            if signum == signal.SIGKILL and wall is not None and self._exit_after >= wall - 0.5:
                return f"stopped at the wall-clock cap of {wall:g} s"
            name = signal.Signals(signum).name if signum in signal.valid_signals() else signum
            return f"killed by signal {name}"
        return f"exited with status {status}"

    def _record_exit(self) -> None:
        """Note how the kernel ended, unless it is being shut down on purpose."""
        process = getattr(self.provisioner, "process", None)
        if process is None or self._exit_status is not None or self.shutting_down:
            return
        status = process.poll()
        if status is not None:
            self._exit_status = status
            self._exit_after = time.monotonic() - (self._started_at or time.monotonic())
            reason, log = self.exit_reason(), self.kernel_log()
            self.log.warning("Sandboxed kernel %s: %s\n%s", self.kernel_id, reason, log)

    def _make_scratch(self, notebook_dir: str | None) -> Path:
        root = os.path.realpath(self.scratch_root or tempfile.gettempdir())
        scratch = Path(tempfile.mkdtemp(prefix="sandbox-", dir=root))
        if len(str(scratch)) > MAX_SCRATCH_PATH:
            _remove_tree(scratch)
            raise SandboxUnavailable(
                f"scratch_root {root!r} is too long a path for the kernel's Unix sockets "
                f"(at most {MAX_SCRATCH_PATH - 16} characters); set a shorter scratch_root"
            )
        (scratch / "connection").mkdir(mode=0o700)
        if notebook_dir:
            _copy_folder(Path(notebook_dir), scratch / "work")
        else:
            (scratch / "work").mkdir()
        if runs_privileged():
            self._sandbox_uid = fresh_uid()
        return scratch

    def kernel_python(self) -> str:
        """The interpreter the kernel runs (``python`` in the kernel spec: this one)."""
        executable = self.kernel_spec.argv[0]
        short_names = {
            "python",
            f"python{sys.version_info[0]}",
            f"python{sys.version_info[0]}.{sys.version_info[1]}",
        }
        return sys.executable if executable in short_names else executable

    def package_import_problem(self) -> str | None:
        """Why a kernel in this sandbox could not import ``selfattn_course`` and its tasks (what
        failed, where the package lies, how to make it visible); None when it can.

        It runs :data:`GRADING_IMPORTS` with the kernel's Python as ``python -P``, in a sandbox
        made from this manager's configuration; the answer is kept for the process (the import
        of torch takes seconds), keyed by what the sandbox shows.
        """
        python = self.kernel_python()
        config = _with_kernel_env(self.sandbox_config(), self.kernel_spec.env)
        key = (python, config.readonly_paths, config.hidden_paths, tuple(config.extra_env.items()))
        if key not in _IMPORT_PROBES:
            _IMPORT_PROBES[key] = _import_problem(python, config)
        return _IMPORT_PROBES[key]

    def _check_interpreter_visible(self, executable: str) -> None:
        real = os.path.realpath(executable)
        visible_paths = (*SYSTEM_DIRS, *self.sandbox_config().readonly_paths)
        visible = [os.path.realpath(path) for path in visible_paths]
        if not any(real == folder or real.startswith(folder + os.sep) for folder in visible):
            raise SandboxUnavailable(
                f"the kernel's interpreter {executable} ({real}) is not visible in the sandbox; "
                f"add its installation to c.SandboxedKernelManager.readonly_paths"
            )


_IMPORT_PROBES: dict[tuple, str | None] = {}


def _import_problem(python: str, config: SandboxConfig) -> str | None:
    """Run :data:`GRADING_IMPORTS` in a sandbox made as ``config`` says; None when it worked,
    else what failed, where the package lies and how to make the sandbox show it."""
    config = replace(config, wall_seconds=IMPORT_PROBE_SECONDS, workdir=None, shared_paths=())
    command = wrap_command([python, "-P", "-c", GRADING_IMPORTS], config)
    try:
        probe = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=IMPORT_PROBE_SECONDS + 30,
            env=launch_env(),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the sandboxed import of the package could not be run: {error}"
    if probe.returncode == 0:
        return None
    lines = [line for line in probe.stderr.splitlines() if line.strip()]
    error = lines[-1].strip() if lines else f"exit status {probe.returncode}"
    found = _package_folder(python, config)
    shown = ", ".join(config.readonly_paths)
    if not found:
        where = (
            f"{python} cannot find selfattn_course outside the sandbox either (with the "
            "sandbox's clean environment: no PYTHONPATH, not run from the course folder); "
            "install the package into that Python (`pip install -e <the course's repository>`)"
        )
    elif not any(_is_inside(found, path) for path in config.readonly_paths) or any(
        _is_inside(found, path) for path in config.hidden_paths
    ):
        where = (
            f"{python} finds selfattn_course in {found}, which the sandbox does not show "
            f"(it shows read-only: {shown}); add that folder in nbgrader_config.py: "
            f"c.SandboxedKernelManager.readonly_paths = [{found!r}] (the package's folder "
            "only: a folder above it may hold the solutions), "
            "or install the package into that Python (`pip install .` from its repository)"
        )
    else:
        where = f"{python} finds selfattn_course in {found}, which the sandbox shows"
    return (
        f"a sandboxed kernel cannot import selfattn_course and its tasks ({error}), so every "
        f"task would score 0: {where}"
    )


def _package_folder(python: str, config: SandboxConfig) -> str:
    """The folder ``python -P`` imports ``selfattn_course`` from outside the sandbox, with the
    sandbox's environment (none of the grader's, so no ``PYTHONPATH``); "" when none."""
    env = {"PATH": "/usr/bin:/bin", **config.extra_env}
    try:
        found = subprocess.run(
            [python, "-P", "-c", FIND_PACKAGE],
            capture_output=True,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return found.stdout.strip() if found.returncode == 0 else ""


def _is_inside(path: str, folder: str) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def _with_kernel_env(config: SandboxConfig, kernel_env: dict[str, str]) -> SandboxConfig:
    """The kernel spec's own environment variables (``kernel.json``'s "env") pass through."""
    if not kernel_env:
        return config
    return replace(config, extra_env={**kernel_env, **config.extra_env})


def _copy_folder(source: Path, dest: Path) -> None:
    """Copy folders, regular files and symlinks (as links: they resolve inside the sandbox);
    skip anything else, such as a FIFO that would block the copy."""

    def copy_regular(src: str, dst: str) -> None:
        if stat.S_ISREG(os.lstat(src).st_mode):
            shutil.copy2(src, dst)

    shutil.copytree(source, dest, symlinks=True, copy_function=copy_regular)


def _chown_tree(root: Path, uid: int) -> None:
    for folder, subfolders, files in os.walk(root):
        os.chown(folder, uid, uid)
        for name in subfolders + files:
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)


def _remove_tree(root: Path) -> None:
    """Remove ``root``, also when the kernel left folders without write or search permission."""
    os.chmod(root, 0o700)
    for folder, subfolders, _files in os.walk(root):
        for name in subfolders:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o700)  # before os.walk goes in
    shutil.rmtree(root)
