"""Submissions that break at run time: each prepends its code to the solution cell of one task.

The code runs in the learner's kernel when the notebook is autograded. Each entry says what the
grader must show for the broken task (``shows``: text, or one of several texts, of the first error
output of the broken solution cell: the reason the feedback gives) and what it costs: ``"task"``,
0 for the broken task and full marks for every other task, as if the broken one was not
attempted; or ``"rest"``, 0 for the broken task and every task after it, where the code also
tampers with the grading tools (``ctypes`` can rewrite anything in the kernel, so the trusted
checks trust no test that runs after it).

``{solution}``, ``{gradebook}``, ``{course}`` and ``{port}`` are filled in by the test: the
course's real solution notebook, gradebook and folder, and a TCP port the test listens on.
"""

RUNTIME = {
    "sigint_loop": {
        "code": "import signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n"
        "    pass",
        "shows": "CellStopped: the cell ran past its time limit of",
        "costs": "task",
    },
    "os_exit": {
        "code": "import os\nos._exit(1)",
        "shows": "CellStopped: the kernel died while running this cell: exited with status 1",
        "costs": "task",
    },
    "segfault": {
        "code": "import ctypes\nctypes.string_at(0)",
        "shows": "CellStopped: the kernel died while running this cell: killed by signal SIGSEGV",
        "costs": "rest",
    },
    "segfault_without_ctypes": {
        "code": "import faulthandler\nfaulthandler._sigsegv()",
        "shows": "CellStopped: the kernel died while running this cell: killed by signal SIGSEGV",
        "costs": "task",
    },
    "memory_bomb": {
        "code": "hoard = bytearray(3 * 2**30)",
        "shows": "MemoryError: past the memory limit of",
        "costs": "task",
    },
    "fork_bomb": {
        "code": "import os\nwhile True:\n    os.fork()",
        "shows": "processes running (a fork bomb?)",
        "costs": "task",
    },
    "huge_output": {
        "code": "print('x' * 50_000_000)",
        "shows": "CellStopped: this cell printed more than its output limit of",
        "costs": "task",
    },
    "read_solutions": {
        "code": "leaked = open({solution!r}).read()",
        "shows": "FileNotFoundError",
        "costs": "task",
    },
    "list_course": {
        "code": "import os\nassert not os.listdir({course!r}), 'the course folder is visible'\n"
        "leaked = open('../../../solutions/ch01/ch01.ipynb').read()",
        "shows": "FileNotFoundError",
        "costs": "task",
    },
    "read_gradebook": {
        "code": "leaked = open({gradebook!r}, 'rb').read()",
        "shows": "FileNotFoundError",
        "costs": "task",
    },
    "write_gradebook": {
        "code": "open({gradebook!r}, 'wb').write(b'all full marks')",
        # The course's folder is absent from the sandbox (ENOENT), or an empty read-only folder
        # where a visible path lies inside it, as the package does in the repository (EROFS).
        "shows": ("FileNotFoundError", "Read-only file system"),
        "costs": "task",
    },
    "socket": {
        "code": "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)",
        "shows": "ConnectionRefusedError",
        "costs": "task",
    },
}
