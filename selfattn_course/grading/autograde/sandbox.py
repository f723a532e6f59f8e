"""The sandbox every submission's code runs in: bubblewrap (``bwrap``) plus resource limits.

A sandboxed command sees a private, mostly empty file system and nothing else of the machine:

- read-only: the system (``/usr``, ``/lib*``, a few files of ``/etc``), the Python installation
  (``sys.prefix``, ``sys.base_prefix``), the ``selfattn_course`` package, and whatever
  :attr:`SandboxConfig.readonly_paths` adds;
- read-write: the working directory :data:`WORKDIR_INSIDE`, a private in-memory folder of
  :attr:`SandboxConfig.tmpfs_bytes` into which the sandbox first copies the files of
  :attr:`SandboxConfig.workdir` (a scratch copy of the notebook's folder, mounted read-only at
  :data:`WORKDIR_SOURCE_INSIDE`): whatever the code writes there fills its own folder, never the
  host's disk; and the :attr:`SandboxConfig.shared_paths` at their own place (the kernel's
  connection folder);
- private and size-capped (:attr:`SandboxConfig.tmpfs_bytes` each): ``/tmp``, ``$HOME``
  (:data:`HOME_INSIDE`), ``/dev/shm``;
- everything else is absent. The course folder, ``solutions/``, the gradebook, other students'
  submissions and the nbgrader configuration are not there, unless they lie inside a path made
  visible; :attr:`SandboxConfig.hidden_paths` covers those with an empty, read-only folder (and
  mounts back the visible paths that lie inside them, e.g. a ``.venv`` inside the course folder).

Namespaces: new mount, PID, IPC, UTS and (unless ``network=True``) network namespaces: the
network has only its own loopback, so neither the internet nor the host's ``127.0.0.1`` is
reachable. The sandbox dies with its parent (``--die-with-parent``) and when its first process
ends (PID namespace), so killing that one process ends everything the student started.

Limits (per sandbox; the kernel's own threads count as processes):

- ``memory_bytes``: address space of each process (``RLIMIT_AS``; ``numpy`` raises MemoryError,
  ``torch`` RuntimeError). It bounds each process, so a sandbox holds at most
  ``max_processes * memory_bytes``; the sandbox's processes are also the first the kernel's
  OOM killer picks (``oom_score_adj`` 1000), before the grader.
- ``max_processes``: ``RLIMIT_NPROC``. The kernel counts it per user, and ignores it for root, so
  the sandboxed code never runs as a user that has other processes:

  * grader not root (an instructor's account): bwrap makes a user namespace (the code runs as
    uid 1000 inside it); the count is per namespace, so each sandbox has its own.
  * grader root (CI, containers): bwrap runs privileged and the code switches (``setpriv``) to a
    fresh unused uid, one per sandbox (:attr:`SandboxConfig.sandbox_uid`). What the code reads
    must then be readable by others (as a Python installation is); what it writes must belong
    to that uid.

- ``wall_seconds``: the whole sandbox's life; ``timeout --signal=KILL`` inside it.
- ``max_file_bytes``: each file written (``RLIMIT_FSIZE``; Python gets ``OSError``). The private
  folders are size-capped; the read-write host folders (``workdir``, ``shared_paths``) are capped
  only per file, so put them on a small file system to cap their total.

- ``cpu_seconds``: CPU time of each process, all its threads together (``RLIMIT_CPU``); past it
  the process is killed. 150 spinning threads reach a 600 s cap in 4 s of wall time, so a
  notebook that burns CPU to slow the class down ends its own kernel first.
- ``niceness``: the sandbox runs at this lower priority (``nice``), so the grader and its other
  kernels get the CPU first.

Not capped: the size of what the kernel prints (the Jupyter client keeps it all; cap it there).
``cpu_threads`` only sets the thread count numpy and torch use. A cell that timed out while its
sandbox waited for a CPU is regraded, never scored 0 (:mod:`.execute`).

What the instructor's machine needs (Linux): ``bwrap`` (Debian/Ubuntu package ``bubblewrap``),
``setpriv``, ``prlimit``, ``choom`` (util-linux) and ``timeout`` (coreutils); and, when grading
as an ordinary user, unprivileged user namespaces (on by default on Debian and Fedora; Ubuntu
24.04 and later restrict them through AppArmor).
:func:`sandbox_available` says whether all of that works here, and what to do if not.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

GiB = 1 << 30
MiB = 1 << 20

HOME_INSIDE = "/home/student"
WORKDIR_INSIDE = f"{HOME_INSIDE}/work"
#: Where the host's ``workdir`` is mounted read-only, to be copied into :data:`WORKDIR_INSIDE`.
WORKDIR_SOURCE_INSIDE = "/run/notebook-folder"
UID_INSIDE = 1000  # the uid the code sees when the sandbox makes a user namespace

# Fresh uids for sandboxes started by root: far above any real account (and above the ranges
# /etc/subuid hands to containers), below 2**31 where some tools get signedness wrong.
FRESH_UID_RANGE = (0x4000_0000, 0x7FFF_0000)

# The system a Python process needs; a symlink (e.g. /lib -> usr/lib) is recreated as a symlink.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/alternatives",
    "/etc/mime.types",
    "/etc/fonts",  # fontconfig, which matplotlib asks for the system fonts
    "/var/cache/fontconfig",
)
NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl")

# Where the sandbox's tools are looked for (not $PATH, which the grader's caller controls).
TOOL_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

# What each step of the command needs, and where it comes from (for error messages).
HELPERS = {
    "bwrap": "bubblewrap",
    "prlimit": "util-linux",
    "choom": "util-linux",
    "setpriv": "util-linux",
    "timeout": "coreutils",
    "nice": "coreutils",
    "cp": "coreutils",
    "sh": "dash",
}
INSTALL_HINT = (
    "install bubblewrap and util-linux: `sudo apt-get install bubblewrap util-linux` "
    "(Debian/Ubuntu), `sudo dnf install bubblewrap util-linux` (Fedora/RHEL)"
)
USERNS_HINT = (
    "bwrap could not create a user namespace: enable unprivileged user namespaces "
    "(`sudo sysctl -w kernel.unprivileged_userns_clone=1` on older Debian, "
    "`sudo sysctl -w user.max_user_namespaces=15000`; on Ubuntu 24.04 and later allow bwrap in "
    "AppArmor or set `kernel.apparmor_restrict_unprivileged_userns=0`), or grade as root"
)
CONTAINER_HINT = (
    "inside a container, bwrap needs the container to allow namespaces and mounts "
    "(e.g. `docker run --security-opt seccomp=unconfined --cap-add SYS_ADMIN` or `--privileged`)"
)
UNSAFE_HINT = (
    "or, only for code you trust, grade without a sandbox: --unsafe-no-sandbox "
    "(SandboxedKernelManager.unsafe_no_sandbox = True)"
)


class SandboxUnavailable(RuntimeError):
    """No sandbox can be made on this machine; the message says why and how to fix it."""


def default_readonly_paths() -> tuple[str, ...]:
    """The Python installation running this code and the ``selfattn_course`` package's folder.

    The package's folder matters for an editable install (the folder lives outside
    ``site-packages``); for a regular install it lies inside the prefix already.
    """
    here = Path(__file__).resolve()  # selfattn_course/grading/autograde/sandbox.py
    package_dir = next(
        (folder for folder in here.parents if folder.name == "selfattn_course"), here.parent
    )
    candidates = (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, package_dir)
    return tuple(dict.fromkeys(os.path.abspath(path) for path in candidates))


def default_hidden_paths() -> tuple[str, ...]:
    """What the sandbox covers with an empty folder:

    - the grader's task modules (:func:`task_modules_dir`): references, expected answers and
      case builders stay in the grader's process; the kernel gets the cases it needs as data
      (:mod:`selfattn_course.grading.verdicts.handover`);
    - Jupyter's configuration folders (where an ``nbgrader_config.py`` may live), e.g.
      ``sys.prefix/etc/jupyter``, which would otherwise be visible inside the Python installation.
    """
    hidden = [str(task_modules_dir())]
    try:
        from jupyter_core.paths import jupyter_config_path
    except ImportError:  # pragma: no cover - jupyter_core comes with every kernel manager
        pass
    else:
        hidden += [os.path.abspath(path) for path in jupyter_config_path()]
    return tuple(dict.fromkeys(hidden))


def task_modules_dir() -> Path:
    """The folder of :mod:`selfattn_course.grading.tasks` (found without importing it)."""
    return Path(__file__).resolve().parent.parent / "tasks"


@dataclass(frozen=True)
class SandboxConfig:
    """What one sandbox may see and use. Sizes in bytes, times in seconds.

    - ``memory_bytes``: address space of each process (``RLIMIT_AS``).
    - ``max_processes``: processes and threads the sandbox may hold at once (``RLIMIT_NPROC``).
    - ``wall_seconds``: life of the whole sandbox; None for no cap.
    - ``network``: share the host's network (off: no network at all).
    - ``max_file_bytes``: largest file it may write (``RLIMIT_FSIZE``).
    - ``tmpfs_bytes``: size of each private in-memory folder: ``/tmp``, ``$HOME``, ``/dev/shm``.
    - ``cpu_threads``: ``OMP_NUM_THREADS`` and friends (a hint to numpy and torch, not a cap).
    - ``cpu_seconds``: CPU time of each process (``RLIMIT_CPU``); None for no cap.
    - ``niceness``: how much lower than the grader the sandbox's priority is (``nice -n``, 0-19).
    - ``workdir``: host folder whose files are copied into :data:`WORKDIR_INSIDE`, the working
      directory (an in-memory folder of ``tmpfs_bytes``; the host folder is never written);
      None for none (the working directory is then ``$HOME``).
    - ``shared_paths``: host folders mounted read-write at their own place.
    - ``readonly_paths``: host paths visible read-only (default :func:`default_readonly_paths`).
    - ``hidden_paths``: host folders shown empty and read-only where a visible path contains
      them (default :func:`default_hidden_paths`); visible paths inside them stay visible.
    - ``sandbox_uid``: as root, the uid the code runs as (None: a :func:`fresh_uid`).
    - ``extra_env``: environment variables, besides the few the sandbox sets.

    ``readonly_paths`` and ``hidden_paths`` replace the defaults when given; to add to them, pass
    ``(*default_readonly_paths(), extra)``. A path both read-only and hidden is hidden.
    """

    memory_bytes: int = 2 * GiB
    max_processes: int = 256
    wall_seconds: float | None = 600.0
    network: bool = False
    max_file_bytes: int = 256 * MiB
    tmpfs_bytes: int = 256 * MiB
    cpu_threads: int = 1
    cpu_seconds: int | None = 600
    niceness: int = 10
    workdir: str | None = None
    shared_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = field(default_factory=default_readonly_paths)
    hidden_paths: tuple[str, ...] = field(default_factory=default_hidden_paths)
    sandbox_uid: int | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "memory_bytes",
            "max_processes",
            "max_file_bytes",
            "tmpfs_bytes",
            "cpu_threads",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.cpu_seconds is not None and (
            isinstance(self.cpu_seconds, bool)
            or not isinstance(self.cpu_seconds, int)
            or self.cpu_seconds < 1
        ):
            raise ValueError(
                f"cpu_seconds must be a positive int or None, got {self.cpu_seconds!r}"
            )
        if isinstance(self.niceness, bool) or self.niceness not in range(20):
            raise ValueError(f"niceness must be an int from 0 to 19, got {self.niceness!r}")
        if self.wall_seconds is not None and not self.wall_seconds > 0:
            raise ValueError(f"wall_seconds must be positive or None, got {self.wall_seconds!r}")
        for name in ("shared_paths", "readonly_paths", "hidden_paths"):
            paths = tuple(getattr(self, name))
            relative = [path for path in paths if not os.path.isabs(path)]
            if relative:
                raise ValueError(f"{name} must be absolute paths, got {relative}")
            object.__setattr__(self, name, paths)
        if self.workdir is not None and not os.path.isabs(self.workdir):
            raise ValueError(f"workdir must be an absolute path, got {self.workdir!r}")


def runs_privileged() -> bool:
    """Whether sandboxes are made by root (bwrap privileged, code switched to a fresh uid)
    rather than inside a user namespace."""
    return os.geteuid() == 0


def fresh_uid() -> int:
    """An unused uid from :data:`FRESH_UID_RANGE`: no running process has it (checked in /proc)."""
    for _ in range(20):
        uid = FRESH_UID_RANGE[0] + secrets.randbelow(FRESH_UID_RANGE[1] - FRESH_UID_RANGE[0])
        if uid not in _uids_in_use():
            return uid
    raise SandboxUnavailable("could not find an unused uid for the sandbox")  # pragma: no cover


def _uids_in_use() -> set[int]:
    uids = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                uids.add(entry.stat().st_uid)
            except OSError:  # the process ended meanwhile
                pass
    return uids


def launch_env() -> dict[str, str]:
    """The environment to start :func:`wrap_command`'s command with: ``PATH`` alone.

    ``--clearenv`` gives the sandboxed program none of the grader's variables, but bwrap itself
    (pid 1 inside the sandbox, run as the grader's user when the grader is not root) keeps the
    environment it was started with, readable in ``/proc/1/environ`` by code of the same user. So
    bwrap is started with nothing the grader's environment may hold (a token, a password).
    """
    return {"PATH": os.environ.get("PATH", os.defpath)}


def wrap_command(argv: Sequence[str], config: SandboxConfig) -> list[str]:
    """The command line that runs ``argv`` inside a sandbox made as ``config`` says.

    ``bwrap <namespaces> <mounts> <environment> -- [setpriv <fresh uid> --] choom -n 1000 --
    nice -n <niceness> -- prlimit <limits> -- timeout --foreground --signal=KILL --
    <wall_seconds> argv``. ``argv[0]`` must be an absolute path visible inside (e.g.
    ``sys.executable``). As root, the code runs as
    ``config.sandbox_uid`` (a :func:`fresh_uid` when None); files it must write (``workdir``,
    ``shared_paths``) must then belong to that uid: :class:`.SandboxedKernelManager` sees to it.
    Start it with ``env=`` :func:`launch_env`.
    """
    argv = [str(arg) for arg in argv]
    if not argv or not os.path.isabs(argv[0]):
        raise ValueError(f"argv[0] must be an absolute path, got {argv[:1]}")
    command = [_tool("bwrap"), *_namespace_args(config), *_mount_args(config), *_env_args(config)]
    command += ["--chdir", WORKDIR_INSIDE if config.workdir else HOME_INSIDE, "--"]
    if runs_privileged():
        uid = config.sandbox_uid if config.sandbox_uid is not None else fresh_uid()
        command += [_tool("setpriv"), f"--reuid={uid}", f"--regid={uid}"]
        command += ["--clear-groups", "--inh-caps=-all", "--"]
    if config.workdir is not None:  # as the sandbox's user, so the copies are its own
        copy = f'{_tool("cp")} -R {WORKDIR_SOURCE_INSIDE}/. {WORKDIR_INSIDE}/ && exec "$@"'
        command += [_tool("sh"), "-c", copy, "sh"]
    command += [_tool("choom"), "-n", "1000", "--"]
    command += [_tool("nice"), "-n", str(config.niceness), "--", _tool("prlimit")]
    command += [
        f"--as={config.memory_bytes}",
        f"--nproc={config.max_processes}",
        f"--fsize={config.max_file_bytes}",
        *([f"--cpu={config.cpu_seconds}"] if config.cpu_seconds is not None else []),
        "--core=0",
        "--",
    ]
    if config.wall_seconds is not None:
        command += [_tool("timeout"), "--foreground", "--signal=KILL", "--"]
        command.append(f"{config.wall_seconds:.3f}")
    return command + argv


def _tool(name: str) -> str:
    found = shutil.which(name, path=TOOL_PATH)
    if found is None:
        raise SandboxUnavailable(
            f"`{name}` (package {HELPERS[name]}) is not installed; {INSTALL_HINT}"
        )
    return found


def _namespace_args(config: SandboxConfig) -> list[str]:
    args = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    args += ["--unshare-cgroup-try", "--hostname", "sandbox"]
    if not config.network:
        args.append("--unshare-net")
    if runs_privileged():
        # setpriv needs these two to switch to the sandbox uid; switching away from root
        # then clears every capability.
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--disable-userns", "--uid", str(UID_INSIDE)]
        args += ["--gid", str(UID_INSIDE)]
    return args


def _env_args(config: SandboxConfig) -> list[str]:
    python_bin = os.path.dirname(sys.executable)
    threads = str(config.cpu_threads)
    env = {
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME_INSIDE,
        "USER": "student",
        "LOGNAME": "student",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",  # the package is read-only
        # Few threads and few malloc arenas keep a process's address space (what memory_bytes
        # caps) close to the memory it really uses, on machines with many cores too.
        "MALLOC_ARENA_MAX": "2",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        **config.extra_env,
    }
    args = ["--clearenv"]  # the grader's environment may hold tokens; pass none of it
    for name, value in env.items():
        args += ["--setenv", name, str(value)]
    return args


class _Mounts:
    """bwrap mount arguments, in order, creating missing parent folders as readable (0755)
    ones: bwrap alone would make them 0700, unreadable for the sandbox's user."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.mounted: dict[str, str] = {"/": "tmpfs"}  # destination -> "bind" | "tmpfs"
        self.created: set[str] = set()

    def bind(self, source: str, dest: str, *, writable: bool = False) -> None:
        self._make_parents(dest)
        self.args += ["--bind" if writable else "--ro-bind", source, dest]
        self.mounted[dest] = "bind"

    def tmpfs(self, dest: str, *, size: int | None = None, perms: str = "0755") -> None:
        self._make_parents(dest)
        if size is not None:
            self.args += ["--size", str(size)]
        self.args += ["--perms", perms, "--tmpfs", dest]
        self.mounted[dest] = "tmpfs"

    def special(self, option: str, dest: str) -> None:
        self._make_parents(dest)
        self.args += [option, dest]
        self.mounted[dest] = "tmpfs"

    def symlink(self, target: str, dest: str) -> None:
        self._make_parents(dest)
        self.args += ["--symlink", target, dest]
        self.mounted[dest] = "bind"  # nothing is created below it

    def covered(self, path: str) -> bool:
        """Whether ``path`` is visible through a bind mount (it or a parent is bound)."""
        mount = self._deepest_mount(path)
        return self.mounted[mount] == "bind"

    def _deepest_mount(self, path: str) -> str:
        return max((m for m in self.mounted if _is_within(path, m)), key=len)

    def _make_parents(self, dest: str) -> None:
        parents = list(Path(dest).parents)[::-1][1:]  # from the top, without "/"
        for parent in map(str, parents):
            mount = self._deepest_mount(parent)
            if mount == parent or self.mounted[mount] == "bind" or parent in self.created:
                continue
            self.args += ["--perms", "0755", "--dir", parent]
            self.created.add(parent)


def _is_within(path: str, folder: str) -> bool:
    return folder == "/" or path == folder or path.startswith(folder.rstrip("/") + "/")


def _mount_args(config: SandboxConfig) -> list[str]:
    mounts = _Mounts()
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            mounts.symlink(os.readlink(path), path)
        elif os.path.isdir(path):
            mounts.bind(path, path)
    system_files = SYSTEM_FILES + (NETWORK_FILES if config.network else ())
    for path in system_files:
        if os.path.exists(path):
            mounts.bind(path, path)
    mounts.special("--proc", "/proc")
    mounts.special("--dev", "/dev")
    mounts.tmpfs("/dev/shm", size=config.tmpfs_bytes, perms="1777")
    mounts.tmpfs("/tmp", size=config.tmpfs_bytes, perms="1777")
    mounts.tmpfs(HOME_INSIDE, size=config.tmpfs_bytes, perms="0777")

    hidden = sorted(
        {os.path.realpath(path) for path in config.hidden_paths if os.path.exists(path)}
    )
    readonly = _readonly_destinations(config.readonly_paths, hidden)
    hidden_mounted = []
    # Shallow first, so that a path inside a hidden folder is bound again on top of it.
    steps = [(path, "ro") for path in readonly] + [(path, "hide") for path in hidden]
    for path, kind in sorted(steps, key=lambda step: step[0].count("/")):
        if kind == "ro":
            if not mounts.covered(path):  # not yet visible, or under a hidden folder
                mounts.bind(path, path)
        elif mounts.covered(path):
            if os.path.isdir(path):
                mounts.tmpfs(path, size=MiB)
                hidden_mounted.append(path)
            else:
                mounts.bind("/dev/null", path)

    if config.workdir is not None:
        mounts.tmpfs(WORKDIR_INSIDE, size=config.tmpfs_bytes, perms="0777")
        mounts.bind(config.workdir, WORKDIR_SOURCE_INSIDE)
    for path in config.shared_paths:
        mounts.bind(path, path, writable=True)

    remount = [*hidden_mounted, "/", "/dev"]
    return mounts.args + [arg for path in remount for arg in ("--remount-ro", path)]


def _readonly_destinations(paths: Iterable[str], hidden: Sequence[str]) -> list[str]:
    """Each read-only path at its real place (symlinks resolved) and, when that differs, at the
    place it was given; paths that do not exist are skipped, hidden ones dropped."""
    destinations = []
    for path in paths:
        if not os.path.exists(path):
            continue
        for place in dict.fromkeys((os.path.realpath(path), os.path.normpath(path))):
            if place not in hidden:
                destinations.append(place)
    return list(dict.fromkeys(destinations))


@cache
def sandbox_available() -> tuple[bool, str]:
    """``(True, "")`` when sandboxes work here, else ``(False, why and how to fix it)``.

    Tries the real thing once (cached): ``true`` inside a sandbox with the default
    :class:`SandboxConfig`.
    """
    if not sys.platform.startswith("linux"):
        return False, f"the sandbox needs Linux (bubblewrap); this is {sys.platform}; {UNSAFE_HINT}"
    needed = ["bwrap", "prlimit", "choom", "nice", "timeout"] + (
        ["setpriv"] if runs_privileged() else []
    )
    missing = [name for name in needed if shutil.which(name, path=TOOL_PATH) is None]
    if missing:
        packages = sorted({HELPERS[name] for name in missing})
        return False, (
            f"missing {', '.join(missing)} (package {', '.join(packages)}); {INSTALL_HINT}; "
            f"{UNSAFE_HINT}"
        )
    probe_command = wrap_command([_tool("true")], SandboxConfig(wall_seconds=30))
    try:
        probe = subprocess.run(
            probe_command, capture_output=True, text=True, timeout=60, env=launch_env()
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"bwrap could not be run: {error}; {UNSAFE_HINT}"
    if probe.returncode == 0:
        return True, ""
    message = probe.stderr.strip() or f"exit status {probe.returncode}"
    hint = CONTAINER_HINT if runs_privileged() else f"{USERNS_HINT}; {CONTAINER_HINT}"
    return False, f"bwrap failed: {message}; {hint}; {UNSAFE_HINT}"


def require_sandbox() -> None:
    """Raise :class:`SandboxUnavailable` (why, and how to fix it) unless sandboxes work here."""
    ok, reason = sandbox_available()
    if not ok:
        raise SandboxUnavailable(f"cannot sandbox student code: {reason}")
