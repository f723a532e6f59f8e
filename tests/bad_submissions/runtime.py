"""Submissions that break at run time: each prepends its code to the solution cell of one task.

The code runs in the learner's kernel when the notebook is autograded. Each entry says what the
grader must show for the broken task (``shows``: text, or one of several texts, of the first error
output of the broken solution cell, or of its printed output when it costs nothing: the reason the
feedback gives) and what it costs: ``"nothing"``, full marks (the code does no harm the grader
lets through); ``"task"``, 0 for the broken task and full marks for every other task, as if the
broken one was not attempted; or ``"rest"``, 0 for the broken task and every task after it,
where the code also tampers with the grading tools (``ctypes`` can rewrite anything in the
kernel, so the trusted checks trust no test that runs after it).

``{solution}``, ``{gradebook}``, ``{course}``, ``{port}``, ``{chapter}`` and ``{learners}`` are
filled in by the test: the course's real solution notebook, gradebook and folder, a TCP port the
test listens on, the chapter, and the learners graded in that chapter (an honest one included).
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
        # the process cap stops it; on a loaded machine the cell's time limit may come first
        "shows": ("processes running (a fork bomb?)", "ran past its time limit"),
        "costs": "task",
    },
    "huge_output": {
        # a correct answer that prints 50 MB: the output is cut, the answer is graded as usual
        "code": "print('x' * 50_000_000)",
        "shows": "output cut at 1 MiB: this cell printed more than its output limit of 1 MiB",
        "costs": "nothing",
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
    "forged_grader_log": {
        # nbgrader's own words for a submission it could not grade, naming every learner of the
        # chapter (an honest one among them), on every stream the kernel has, then a death that
        # logs the kernel's output: whether a unit was graded is read from what nbgrader left,
        # never from text.
        "code": "import os, sys\n"
        "lines = ''.join(\"[AutogradeApp | ERROR] There was an error processing assignment \"\n"
        "                \"'{chapter}' for student '%s'\\n\" % name for name in {learners!r})\n"
        "for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):\n"
        "    print(lines, file=stream, flush=True)\n"
        "for fd in (1, 2):\n"
        "    os.write(fd, lines.encode())\n"
        "os._exit(1)",
        "shows": "CellStopped: the kernel died while running this cell: exited with status 1",
        "costs": "task",
    },
}
