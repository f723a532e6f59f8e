"""The sandbox student notebooks run in (grading/autograde/sandbox.py and sandbox_kernel.py).

Most tests run real sandboxed kernels through nbclient, as the autograder does. One kernel runs a
"probe" notebook that tries everything a submission must not do (and a few things it must be able
to do) and reports what happened; one test per property reads that report. Kernels that must die
(os._exit, a segfault, the wall-clock cap) get a kernel each.

Where bubblewrap cannot run these tests skip, saying why; with SELFATTN_REQUIRE_SANDBOX=1 (CI)
they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from selfattn_course.grading.autograde import sandbox
from selfattn_course.grading.autograde.sandbox import (
    WORKDIR_INSIDE,
    GiB,
    MiB,
    SandboxConfig,
    SandboxUnavailable,
    sandbox_available,
    wrap_command,
)
from selfattn_course.grading.autograde.sandbox_kernel import SandboxedKernelManager

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "selfattn_course"

AVAILABLE, WHY_NOT = sandbox_available()
if not AVAILABLE and os.environ.get("SELFATTN_REQUIRE_SANDBOX") == "1":
    raise SandboxUnavailable(f"SELFATTN_REQUIRE_SANDBOX=1 but {WHY_NOT}")
needs_bwrap = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox here: {WHY_NOT}")

TEST_MAX_PROCESSES = 64
TEST_TMPFS_BYTES = 16 * MiB
TEST_MAX_FILE_BYTES = 8 * MiB


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nb


def run_notebook(nb, km: SandboxedKernelManager, folder: Path | None = None, **client_options):
    resources = {"metadata": {"path": str(folder)}} if folder else {}
    client_options.setdefault("timeout", 60)
    # The caller owns a kernel manager it passes in; cleanup_kc=True ends the kernel all the same.
    NotebookClient(nb, km=km, resources=resources, **client_options).execute(cleanup_kc=True)
    return nb


def stdout_of(cell) -> str:
    return "".join(
        output.get("text", "") for output in cell.outputs if output.output_type == "stream"
    )


# --- The course a probe runs in --------------------------------------------------------------
#
#   home/                     read-only for the kernel (like an instructor's home folder) ...
#     course/                 ... but this is hidden: an empty read-only folder, except
#       lib/helper.py         this, visible again (like a .venv inside the course folder)
#       solutions/ch01.py     secret
#       gradebook.db          secret, must not be written
#       nbgrader_config.py
#       submitted/alice/ch01/ the notebook's folder: ch01.ipynb, data.txt
#       submitted/bob/ch01/   another student's answer


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict[str, Path]:
    home = tmp_path_factory.mktemp("home")
    home.chmod(0o755)  # as root, the sandbox runs as another user: what it reads must be readable
    root = home / "course"
    files = {
        "helper": root / "lib" / "helper.py",
        "solution": root / "solutions" / "ch01.py",
        "gradebook": root / "gradebook.db",
        "config": root / "nbgrader_config.py",
        "data": root / "submitted" / "alice" / "ch01" / "data.txt",
        "other_student": root / "submitted" / "bob" / "ch01" / "answer.txt",
    }
    for name, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name} contents\n")
    return {"home": home, "root": root, "notebook_dir": files["data"].parent, **files}


PROBE = [
    # 0: what the probe uses
    """
import errno, json, os, signal, socket, sys, time
results = {}
def attempt(action):
    # "ok", or how the action failed: the errno's name (ENOENT, EROFS...), else the error type
    try:
        action()
    except BaseException as error:
        return errno.errorcode.get(getattr(error, "errno", None), type(error).__name__)
    return "ok"
def write(path, data="x"):
    with open(path, "w") as file:
        file.write(data)
""",
    # 1: a fork bomb first (the kernel is small): fork until refused, then clean up
    """
children = []
try:
    for _ in range(10_000):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
    refused = "never"
except OSError as error:
    refused = errno.errorcode[error.errno]
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
results["fork_bomb"] = [len(children), refused]
def fork_once():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
results["fork_after_bomb"] = attempt(fork_once)
""",
    # 2: files: own folder, hidden course, package, Python, private /tmp
    """
results["cwd"] = os.getcwd()
results["read_own_data"] = open("data.txt").read()
results["write_own_folder"] = attempt(lambda: write("out.txt"))
results["read_solution"] = attempt(lambda: open({solution!r}).read())
results["read_config"] = attempt(lambda: open({config!r}).read())
results["read_gradebook"] = attempt(lambda: open({gradebook!r}, "rb").read())
results["write_gradebook"] = attempt(lambda: write({gradebook!r}))
results["read_other_student"] = attempt(lambda: open({other_student!r}).read())
results["list_course"] = sorted(os.listdir({root!r}))
results["read_visible_inside_hidden"] = open({helper!r}).read()
results["write_home_folder"] = attempt(lambda: write({home_file!r}))
results["read_repo_config"] = attempt(lambda: open({repo_config!r}).read())
results["read_repo_solutions"] = attempt(lambda: os.listdir({repo_solutions!r}))
results["write_repo_gradebook"] = attempt(lambda: write({repo_gradebook!r}))
results["write_package"] = attempt(lambda: write({package_file!r}))
results["write_python"] = attempt(lambda: write(os.path.join(sys.base_prefix, "sandbox.txt")))
results["write_tmp"] = attempt(lambda: write("/tmp/scratch.txt"))
def fill_tmp():  # files smaller than max_file_bytes, more than tmpfs_bytes in all
    for number in range({tmpfs_files}):
        write(f"/tmp/part{{number}}.bin", "x" * {tmpfs_file})
results["fill_tmp"] = attempt(fill_tmp)
def fill_work():  # the same, in the working directory (the notebook's folder)
    for number in range({tmpfs_files}):
        write(f"fill{{number}}.bin", "x" * {tmpfs_file})
results["fill_work"] = attempt(fill_work)
for name in os.listdir("."):
    if name.startswith("fill"):
        os.remove(name)
results["write_large_file"] = attempt(lambda: write("large.bin", "x" * {file_overflow}))
results["uid"] = os.getuid()
results["env_leak"] = os.environ.get("SANDBOX_TEST_SECRET")
results["hostname"] = socket.gethostname()
""",
    # 3: network
    """
def connect(address):
    with socket.create_connection(address, timeout=3):
        pass
results["tcp_host_loopback"] = attempt(lambda: connect(("127.0.0.1", {port})))
results["tcp_outside"] = attempt(lambda: connect(("192.0.2.1", 80)))
results["dns"] = attempt(lambda: socket.getaddrinfo("pypi.org", 443))
""",
    # 4: memory, numpy and torch, and the course package
    """
import numpy as np
results["numpy_3gib"] = attempt(lambda: np.ones(3 * 2**30, dtype=np.uint8))
results["numpy_100mib"] = attempt(lambda: np.ones(100 * 2**20, dtype=np.uint8))
import torch
results["torch_3gib"] = attempt(lambda: torch.ones(3 * 2**30, dtype=torch.uint8))
results["torch_matmul"] = float((torch.ones(3, 3) @ torch.ones(3, 3)).sum())
from selfattn_course.attention import softmax
results["package_softmax"] = softmax(torch.zeros(4)).tolist()
""",
    "print(json.dumps(results))",
]


@pytest.fixture(scope="module")
def probe(course) -> dict:
    """Run the probe notebook in one sandboxed kernel; its report, plus what the host saw."""
    if not AVAILABLE:
        pytest.skip(f"no sandbox here: {WHY_NOT}")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    names = ("solution", "config", "gradebook", "other_student", "root", "helper")
    paths = {name: str(course[name]) for name in names}
    paths.update(
        home_file=str(course["home"] / "planted.txt"),
        repo_config=str(REPO / "nbgrader_config.py"),
        repo_solutions=str(REPO / "solutions"),
        repo_gradebook=str(REPO / "gradebook.db"),
        package_file=str(PACKAGE_DIR / "planted.py"),
        tmpfs_file=TEST_MAX_FILE_BYTES // 2,
        tmpfs_files=2 * TEST_TMPFS_BYTES // TEST_MAX_FILE_BYTES + 1,
        file_overflow=TEST_MAX_FILE_BYTES + MiB,
        port=listener.getsockname()[1],
    )
    cells = [PROBE[0], PROBE[1], PROBE[2].format(**paths), PROBE[3].format(**paths), *PROBE[4:]]
    km = SandboxedKernelManager(
        kernel_name="python3",
        memory_bytes=2 * GiB,
        max_processes=TEST_MAX_PROCESSES,
        wall_seconds=120,
        tmpfs_bytes=TEST_TMPFS_BYTES,
        max_file_bytes=TEST_MAX_FILE_BYTES,
        readonly_paths=[str(course["home"]), str(course["helper"].parent)],
        hidden_paths=[str(course["root"])],
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SANDBOX_TEST_SECRET", "token-of-the-grader")
        nb = run_notebook(notebook(*cells), km, course["notebook_dir"])
    report = json.loads(stdout_of(nb.cells[-1]))
    try:
        listener.accept()
        report["host_listener_accepted"] = True
    except TimeoutError:
        report["host_listener_accepted"] = False
    finally:
        listener.close()
    report["host_notebook_dir"] = sorted(os.listdir(course["notebook_dir"]))
    report["host_gradebook"] = course["gradebook"].read_text()
    report["host_home"] = sorted(os.listdir(course["home"]))
    report["scratch_left"] = km._scratch
    return report


# --- Files ---------------------------------------------------------------------------------


@needs_bwrap
def test_kernel_works_in_a_copy_of_its_notebook_folder(probe, course):
    assert probe["cwd"] == WORKDIR_INSIDE
    assert probe["read_own_data"] == "data contents\n"
    assert probe["write_own_folder"] == "ok"
    assert probe["host_notebook_dir"] == ["data.txt"]  # out.txt went to the sandbox's copy


@needs_bwrap
def test_the_working_folder_is_private_and_size_capped_so_the_hosts_disk_never_fills(probe):
    assert probe["fill_work"] == "ENOSPC"  # past tmpfs_bytes, in memory, not on the host


@needs_bwrap
@pytest.mark.parametrize(
    "secret", ["read_solution", "read_config", "read_gradebook", "read_other_student"]
)
def test_hidden_course_files_cannot_be_read(probe, secret):
    assert probe[secret] == "ENOENT"


@needs_bwrap
def test_hidden_course_folder_is_empty_but_for_allowed_paths(probe):
    assert probe["list_course"] == ["lib"]
    assert probe["read_visible_inside_hidden"] == "helper contents\n"


@needs_bwrap
def test_gradebook_next_to_hidden_course_root_cannot_be_written(probe):
    assert probe["write_gradebook"] == "EROFS"  # the hidden folder is read-only
    assert probe["host_gradebook"] == "gradebook contents\n"


@needs_bwrap
def test_readonly_folders_cannot_be_written(probe):
    assert probe["write_home_folder"] == "EROFS"
    assert probe["write_package"] == "EROFS"
    assert probe["write_python"] == "EROFS"
    assert probe["host_home"] == ["course"]


@needs_bwrap
def test_repository_course_root_is_hidden(probe):
    """The repository itself is a course root holding the package (and, here, the .venv)."""
    assert probe["read_repo_config"] == "ENOENT"
    assert probe["read_repo_solutions"] == "ENOENT"
    # EROFS where the package or the .venv lies inside the repository (their parent folders
    # exist, read-only), ENOENT where neither does, EACCES where the repository lies under /tmp
    # (the sandbox's private /tmp then holds a root-owned stand-in folder): the write fails
    # each way.
    assert probe["write_repo_gradebook"] in ("EROFS", "ENOENT", "EACCES")


@needs_bwrap
def test_tmp_is_private_and_size_capped(probe):
    assert probe["write_tmp"] == "ok"
    assert probe["fill_tmp"] == "ENOSPC"  # past tmpfs_bytes


@needs_bwrap
def test_file_size_is_capped(probe):
    assert probe["write_large_file"] == "EFBIG"  # past max_file_bytes


@needs_bwrap
def test_kernel_is_not_root_and_gets_none_of_the_graders_environment(probe):
    assert probe["uid"] != 0
    assert probe["env_leak"] is None
    assert probe["hostname"] == "sandbox"


@needs_bwrap
def test_scratch_folder_is_removed_with_the_kernel(probe):
    assert probe["scratch_left"] is None


# --- Network, memory, processes, libraries ------------------------------------------------


@needs_bwrap
def test_no_network_not_even_the_hosts_loopback(probe):
    assert probe["tcp_host_loopback"] == "ECONNREFUSED"  # its own, empty loopback
    assert probe["host_listener_accepted"] is False
    assert probe["tcp_outside"] == "ENETUNREACH"  # no route at all
    assert probe["dns"] == "gaierror"


@needs_bwrap
def test_memory_cap_stops_a_large_allocation_but_not_a_small_one(probe):
    assert probe["numpy_3gib"] == "MemoryError"
    assert probe["torch_3gib"] == "RuntimeError"
    assert probe["numpy_100mib"] == "ok"


@needs_bwrap
def test_torch_and_the_package_import_and_compute(probe):
    assert probe["torch_matmul"] == 27.0
    assert probe["package_softmax"] == [0.25, 0.25, 0.25, 0.25]


@needs_bwrap
def test_fork_bomb_hits_the_process_cap_and_the_kernel_survives(probe):
    forked, refused = probe["fork_bomb"]
    assert refused == "EAGAIN"
    assert 0 < forked < TEST_MAX_PROCESSES  # the kernel's own threads count too
    assert probe["fork_after_bomb"] == "ok"


# --- Kernels that die ------------------------------------------------------------------------


def dying_kernel_manager(**limits) -> SandboxedKernelManager:
    return SandboxedKernelManager(kernel_name="python3", **limits)


@needs_bwrap
@pytest.mark.parametrize(
    ("death", "reason"),
    [
        ("import os; os._exit(1)", "exited with status 1"),
        ("import ctypes; ctypes.string_at(0)", "killed by signal SIGSEGV"),
    ],
    ids=["os_exit", "segfault"],
)
def test_dead_kernel_is_a_dead_kernel_error_the_caller_can_handle(death, reason):
    km = dying_kernel_manager(wall_seconds=120)
    nb = notebook("x = 1", death, "print('never')")
    with pytest.raises(DeadKernelError):
        run_notebook(nb, km)
    assert km.exit_reason() == reason
    assert nb.cells[2].outputs == []


@needs_bwrap
def test_wall_clock_cap_stops_a_loop_that_ignores_interrupts():
    wall = 10
    km = dying_kernel_manager(wall_seconds=wall)
    nb = notebook(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    )
    started = time.monotonic()
    with pytest.raises(DeadKernelError):
        run_notebook(nb, km, timeout=120)
    assert time.monotonic() - started < wall + 15
    assert km.exit_reason() == f"stopped at the wall-clock cap of {wall} s"


@needs_bwrap
def test_cell_timeout_interrupts_the_sandboxed_kernel():
    """nbgrader interrupts a cell past its timeout; the interrupt reaches the kernel (as a
    message: a signal would kill bwrap) and the next cell runs."""
    km = dying_kernel_manager(wall_seconds=120)
    nb = notebook("import time\ntime.sleep(60)", "print('next cell ran')")
    run_notebook(nb, km, timeout=3, interrupt_on_timeout=True, allow_errors=True)
    assert any(output.get("ename") == "KeyboardInterrupt" for output in nb.cells[0].outputs)
    assert stdout_of(nb.cells[1]) == "next cell ran\n"


# --- One sandbox does not starve another -----------------------------------------------------

HOLD_ALL_PROCESSES = """
import os, sys, time
try:
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
except OSError:
    print("full", flush=True)
    time.sleep(30)
"""

FORK_TWENTY = """
import os
for _ in range(20):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print("forked 20")
"""


@needs_bwrap
def test_fork_bomb_in_one_sandbox_leaves_another_its_own_processes():
    config = SandboxConfig(max_processes=32, wall_seconds=60)
    bomb = subprocess.Popen(
        wrap_command([sys.executable, "-c", HOLD_ALL_PROCESSES], config),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bomb.stdout.readline() == "full\n"
        other = subprocess.run(
            wrap_command([sys.executable, "-c", FORK_TWENTY], config),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.stdout == "forked 20\n", other.stderr
    finally:
        bomb.kill()  # bwrap dies, and with it the whole sandbox (--die-with-parent)
        bomb.wait()


# --- The sandbox of a grader that is not root (an instructor's account) ----------------------
#
# As root (CI) the tests above run bwrap privileged; an instructor's account makes a user
# namespace instead. This runs sandbox.py as an ordinary user (nobody) with an interpreter that
# user may run, on the process cap, isolation between sandboxes, files and network.

USERNS_CHECK = r"""
import importlib.util, json, os, subprocess, sys
spec = importlib.util.spec_from_file_location("sandbox", sys.argv[1])
sandbox = sys.modules["sandbox"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sandbox)
config = sandbox.SandboxConfig(max_processes=32, wall_seconds=60)
os.environ["SANDBOX_TEST_SECRET"] = "token-of-the-grader"  # in the grader's environment
def sandboxed(code):
    return sandbox.wrap_command([sys.executable, "-c", code], config)
bomb = subprocess.Popen(
    sandboxed(sys.argv[2]), stdout=subprocess.PIPE, text=True, env=sandbox.launch_env()
)
try:
    held = bomb.stdout.readline().strip()
    other = subprocess.run(
        sandboxed(sys.argv[3]), capture_output=True, text=True, timeout=60,
        env=sandbox.launch_env(),
    )
finally:
    bomb.kill()
    bomb.wait()
print(json.dumps({"privileged": sandbox.runs_privileged(), "held": held,
                  "other": other.stdout.strip(), "stderr": other.stderr}))
"""

USERNS_PROBE = """
import errno, json, os, socket
def attempt(action):
    try:
        action()
    except OSError as error:
        return errno.errorcode[error.errno]
    return "ok"
for _ in range(20):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
def environments_read():  # every process's environment this user may read, bwrap's included
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                found.append(environ.read())
        except OSError:
            pass
    return found
environments = environments_read()
print(json.dumps({
    "environments_read": len(environments),
    "secret_seen": any(b"token-of-the-grader" in text for text in environments),
    "uid": os.getuid(),
    "write_root": attempt(lambda: open("/planted", "w")),
    "write_home": attempt(lambda: open(os.path.expanduser("~/notes"), "w").close()),
    "tcp_loopback": attempt(lambda: socket.create_connection(("127.0.0.1", 22), timeout=3)),
}))
"""


def interpreter_for_nobody() -> str | None:
    """A Python that user ``nobody`` can start, or None."""
    candidates = (sys.executable, "/usr/local/bin/python3", "/usr/bin/python3")
    for python in dict.fromkeys(candidates):
        try:
            started = subprocess.run(
                [python, "-c", "pass"],
                user=65534,
                group=65534,
                extra_groups=[],
                cwd="/",
                capture_output=True,
                timeout=30,
            )
        except OSError:
            continue
        if started.returncode == 0:
            return python
    return None


@needs_bwrap
def test_user_namespace_sandbox_caps_processes_per_sandbox_and_confines(tmp_path):
    if os.geteuid() == 0:
        python = interpreter_for_nobody()
        if python is None:
            pytest.skip("no Python interpreter that user nobody may run")
        as_user = {"user": 65534, "group": 65534, "extra_groups": []}
    else:
        python, as_user = sys.executable, {}
    folder = Path(tempfile.mkdtemp())  # readable by nobody, unlike pytest's tmp_path
    try:
        folder.chmod(0o755)
        script = folder / "sandbox.py"
        shutil.copyfile(sandbox.__file__, script)
        script.chmod(0o644)
        checker = subprocess.run(
            [python, "-c", USERNS_CHECK, str(script), HOLD_ALL_PROCESSES, USERNS_PROBE],
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
            **as_user,
        )
    finally:
        shutil.rmtree(folder)
    assert checker.returncode == 0, checker.stderr
    report = json.loads(checker.stdout)
    assert report["privileged"] is False
    assert report["held"] == "full"  # one sandbox holds all its 32 processes ...
    inner = json.loads(report["other"] or "{}")  # ... and another still forks 20 of its own
    # bwrap (pid 1 inside, this user's) keeps the environment it started with: launch_env's
    assert inner.pop("environments_read") >= 2  # its own and bwrap's, at least
    assert inner.pop("secret_seen") is False
    assert inner == {
        "uid": 1000,
        "write_root": "EROFS",
        "write_home": "ok",
        "tcp_loopback": "ECONNREFUSED",
    }, report["stderr"]


# --- Where no sandbox can be made ----------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")
def test_missing_bwrap_is_reported_with_how_to_install_it(monkeypatch):
    real_which = sandbox.shutil.which
    monkeypatch.setattr(
        sandbox.shutil,
        "which",
        lambda name, path=None: None if name == "bwrap" else real_which(name, path=path),
    )
    ok, reason = sandbox.sandbox_available.__wrapped__()
    assert not ok
    assert "missing bwrap (package bubblewrap)" in reason
    assert "apt-get install bubblewrap" in reason
    assert "--unsafe-no-sandbox" in reason


def test_kernel_start_stops_with_the_reason_when_no_sandbox_can_be_made(monkeypatch):
    monkeypatch.setattr(sandbox, "sandbox_available", lambda: (False, "bwrap is not installed"))
    km = SandboxedKernelManager(kernel_name="python3")
    with pytest.raises(
        SandboxUnavailable, match="cannot sandbox student code: bwrap is not installed"
    ):
        run_notebook(notebook("print(1)"), km)


def test_unsafe_no_sandbox_runs_the_kernel_unsandboxed(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "sandbox_available", lambda: (False, "bwrap is not installed"))
    km = SandboxedKernelManager(kernel_name="python3", unsafe_no_sandbox=True)
    nb = run_notebook(notebook("import os; print(os.getcwd())"), km, tmp_path)
    assert stdout_of(nb.cells[0]) == f"{tmp_path}\n"  # the real folder: no sandbox, no copy


@needs_bwrap
def test_kernel_whose_interpreter_the_sandbox_cannot_see_is_refused_before_it_starts():
    km = SandboxedKernelManager(kernel_name="python3")
    km.kernel_spec.argv = [
        "/opt/elsewhere/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    with pytest.raises(SandboxUnavailable, match="/opt/elsewhere/bin/python .* is not visible"):
        run_notebook(notebook("print(1)"), km)
    assert km._scratch is None  # its scratch folder went too


# --- The command line -----------------------------------------------------------------------


@needs_bwrap  # wrap_command looks its tools up
def test_command_sets_the_limits_and_no_network():
    config = SandboxConfig(memory_bytes=GiB, max_processes=50, wall_seconds=30, max_file_bytes=MiB)
    command = wrap_command(["/usr/bin/true"], config)
    assert command[0].endswith("/bwrap") and command[-1] == "/usr/bin/true"
    assert "--unshare-net" in command and "--die-with-parent" in command
    assert {f"--as={GiB}", "--nproc=50", f"--fsize={MiB}"} <= set(command)
    assert command[command.index("--signal=KILL") + 2] == "30.000"
    assert "--unshare-net" not in wrap_command(["/usr/bin/true"], SandboxConfig(network=True))


@needs_bwrap
def test_command_caps_cpu_time_and_lowers_the_priority():
    command = wrap_command(["/usr/bin/true"], SandboxConfig(cpu_seconds=42, niceness=7))
    assert "--cpu=42" in command
    nice = next(i for i, part in enumerate(command) if part.endswith("/nice"))
    assert command[nice + 1 : nice + 3] == ["-n", "7"]
    uncapped = wrap_command(["/usr/bin/true"], SandboxConfig(cpu_seconds=None))
    assert not any(part.startswith("--cpu=") for part in uncapped)


@needs_bwrap
def test_a_process_that_burns_its_cpu_time_is_killed_long_before_the_wall_clock_cap():
    spin = (
        "import threading\n"
        "def spin():\n"
        "    while True:\n"
        "        pass\n"
        "for _ in range(4):\n"
        "    threading.Thread(target=spin).start()\n"
    )
    command = wrap_command(
        [sys.executable, "-c", spin], SandboxConfig(cpu_seconds=2, wall_seconds=60)
    )
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, env=sandbox.launch_env(), timeout=90)
    assert done.returncode in (128 + 24, 128 + 9, -24, -9), done  # SIGXCPU, then SIGKILL
    assert time.monotonic() - started < 30


@needs_bwrap
def test_the_graders_task_modules_are_hidden_in_the_sandbox_but_the_kernel_side_imports():
    probe = (
        "import importlib.util, selfattn_course.grading.cell, selfattn_course.grading.tripwires\n"
        "print(importlib.util.find_spec('selfattn_course.grading.tasks.ch02'))"
    )
    command = wrap_command([sys.executable, "-P", "-c", probe], SandboxConfig(wall_seconds=60))
    done = subprocess.run(
        command, capture_output=True, text=True, env=sandbox.launch_env(), timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "None"


@needs_bwrap  # wrap_command looks its tools up
def test_command_hides_a_folder_inside_a_readonly_one_and_binds_back_what_it_allows(tmp_path):
    outer, hidden, allowed = tmp_path, tmp_path / "course", tmp_path / "course" / "lib"
    allowed.mkdir(parents=True)
    config = SandboxConfig(readonly_paths=(str(outer), str(allowed)), hidden_paths=(str(hidden),))
    args = wrap_command(["/usr/bin/true"], config)
    bind_outer = args.index(str(outer)) - 1
    hide = args.index(str(hidden)) - 1
    bind_allowed = args.index(str(allowed)) - 1
    assert args[bind_outer] == "--ro-bind" and args[hide] == "--tmpfs"
    assert args[bind_allowed] == "--ro-bind"
    assert bind_outer < hide < bind_allowed
    remounted = [args[i + 1] for i, arg in enumerate(args) if arg == "--remount-ro"]
    assert remounted == [str(hidden), "/", "/dev"]


def test_command_needs_an_absolute_program():
    with pytest.raises(ValueError, match=r"argv\[0\] must be an absolute path, got \['python'\]"):
        wrap_command(["python", "-c", "pass"], SandboxConfig())


@pytest.mark.parametrize(
    "field", ["memory_bytes", "max_processes", "max_file_bytes", "tmpfs_bytes"]
)
def test_config_rejects_non_positive_sizes(field):
    with pytest.raises(ValueError, match=f"{field} must be a positive int, got 0"):
        SandboxConfig(**{field: 0})


def test_config_rejects_relative_paths():
    with pytest.raises(ValueError, match=r"hidden_paths must be absolute paths, got \['course'\]"):
        SandboxConfig(hidden_paths=("course",))


@needs_bwrap
def test_nbgrader_execute_preprocessor_runs_kernels_in_the_sandbox_configured(tmp_path):
    """nbgrader's Execute passes kernel_manager_class=AsyncKernelManager itself (configuration
    cannot override it): a subclass passes SandboxedKernelManager, the limits come from config."""
    from nbgrader.preprocessors import Execute
    from traitlets.config import Config

    class SandboxedExecute(Execute):
        def __init__(self, **kwargs):
            kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
            super().__init__(**kwargs)

    config = Config()
    config.SandboxedKernelManager.memory_bytes = 3 * GiB
    config.SandboxedKernelManager.max_processes = 77
    nb = notebook(
        "import os, resource\n"
        "print(os.getcwd(), resource.getrlimit(resource.RLIMIT_AS)[0] >> 30,"
        " resource.getrlimit(resource.RLIMIT_NPROC)[0])"
    )
    nb, _ = SandboxedExecute(config=config).preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    assert stdout_of(nb.cells[0]) == f"{WORKDIR_INSIDE} 3 77\n"


def test_kernel_manager_limits_come_from_traitlets_config():
    """nbclient and nbconvert make the kernel manager with their own config: the limits set in
    nbgrader_config.py (c.SandboxedKernelManager.*) and nbgrader's course root reach it."""
    from traitlets.config import Config

    config = Config()
    config.SandboxedKernelManager.memory_bytes = 3 * GiB
    config.SandboxedKernelManager.wall_seconds = 42.0
    config.CourseDirectory.root = "/srv/course"
    client = NotebookClient(notebook(), config=config, kernel_manager_class=SandboxedKernelManager)
    sandbox_config = client.create_kernel_manager().sandbox_config()
    assert sandbox_config.memory_bytes == 3 * GiB
    assert sandbox_config.wall_seconds == 42.0
    assert "/srv/course" in sandbox_config.hidden_paths
