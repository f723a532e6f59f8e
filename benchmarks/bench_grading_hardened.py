"""What the hardened grader costs: plain nbgrader against the course's config, and the bad bank.

Not a test: it prints two tables.

1. Per-notebook autograde time of one student's correct solution notebooks (one per chapter), with
   nbgrader's stock pipeline (no sandbox, hidden tests decided in the kernel) and with the
   course's ``nbgrader_config.py`` (sandbox, GradingExecute, trusted checks), each graded in one
   ``nbgrader autograde`` call, twice (the first run warms the disk caches; the second counts).
   The hardened path should add at most 30%; one student's 30 notebooks should grade in under
   60 s (extrapolated: nbgrader's start plus 30 times the mean notebook).
2. Each class of bad submission in tests/bad_submissions/: the score it gets, the reason shown,
   and the time its notebook took.

    python benchmarks/bench_grading_hardened.py                 # chapters in solutions/, 2 CPUs
    python benchmarks/bench_grading_hardened.py --bank-chapter ch02 --cpus 0,1

Needs bubblewrap (``make sandbox-deps``). Runs in temporary folders; the repository's gradebook
is never touched. About 4 to 6 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat

from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde import sandbox
from selfattn_course.grading.autograde.nbgrader_command import run_nbgrader, students_not_graded
from selfattn_course.grading.classroom import course, intake, report
from selfattn_course.grading.classroom.course import Submission
from selfattn_course.grading.classroom.gradebook import GradebookWriter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # tests/helpers.py: scratch courses and submissions
BANK = REPO / "tests" / "bad_submissions"
STUDENT = "bench"
# The line nbgrader (0.9) logs as it starts on a notebook.
STARTED = re.compile(
    r"Autograding .*[\\/](?P<student>[^\\/]+)[\\/](?P<chapter>ch\d\d)[\\/][^\\/]+\.ipynb\s*$"
)

# nbgrader's stock autograde: the course's folders and chapters, nothing else.
STOCK_CONFIG = """
from pathlib import Path
c = get_config()
root = Path(__file__).resolve().parent
c.CourseDirectory.root = str(root)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.SelfattnCourse.assignments = sorted(p.name for p in (root / "solutions").glob("ch[0-9][0-9]"))
c.Execute.timeout = 120
"""

# The bank's caps, as in tests/test_grading_robustness.py.
BANK_CAPS = """
c.Execute.timeout = 10
c.GradingExecute.notebook_wall_seconds = 90
c.GradingExecute.max_cell_output_bytes = 1024**2
c.SandboxedKernelManager.max_processes = 64
"""


def main() -> None:
    args = parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    ok, why_not = sandbox.sandbox_available()
    if not ok:
        sys.exit(f"no sandbox here: {why_not}")
    chapters = course.chapters(REPO)
    print(f"CPUs: {len(os.sched_getaffinity(0))}; chapters: {', '.join(chapters)}\n")
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        scratch = Path(scratch)
        timings = {}
        for config in ("stock", "hardened", "stock", "hardened"):  # the second of each counts
            timings[config] = grade_solutions(
                scratch / f"{config}-{time.monotonic_ns()}", chapters, config
            )
        print_overhead(timings, chapters)
        print_bank(scratch / "bank", args.bank_chapter)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank-chapter", default="ch02", help="chapter the bad bank breaks")
    parser.add_argument("--cpus", default="0,1", help="CPUs to run on (default 0,1; '' for all)")
    return parser.parse_args()


def make_course(folder: Path, chapters: list[str], config: str, extra: str = "") -> Path:
    from helpers import released_course

    return released_course(
        REPO,
        folder / "course",
        chapters,
        config_text=STOCK_CONFIG if config == "stock" else None,
        extra_config=extra,
    )


def timed_autograde(
    course_dir: Path, submissions: Sequence[Submission]
) -> tuple[float, dict[tuple[str, str], float]]:
    """The ``submissions`` copied into ``submitted/`` and graded by one plain ``nbgrader
    autograde`` call; its wall time, and each notebook's (from its start to the next's)."""
    for submission in submissions:
        target = course_dir / "submitted" / submission.student / submission.chapter
        shutil.copytree(submission.path.parent, target)
    starts: list[tuple[float, tuple[str, str]]] = []

    def on_line(line: str) -> None:
        if found := STARTED.search(line):
            starts.append((time.perf_counter(), (found["student"], found["chapter"])))

    started = time.perf_counter()
    command = run_nbgrader(course_dir, ["autograde", course.ALL_CHAPTERS_GLOB], on_line=on_line)
    ended = time.perf_counter()
    if not_graded := students_not_graded(command.log):
        print(f"  nbgrader could not grade {not_graded}")
    ends = [at for at, _ in starts[1:]] + [ended]
    return ended - started, {pair: end - at for (at, pair), end in zip(starts, ends, strict=True)}


def grade_solutions(folder: Path, chapters: list[str], config: str) -> dict:
    course_dir = make_course(folder, chapters, config)
    incoming = folder / "incoming"
    for chapter in chapters:
        notebooks.write(
            notebooks.read(REPO / "solutions" / chapter / f"{chapter}.ipynb"),
            incoming / STUDENT / chapter / f"{chapter}.ipynb",
        )
    total, per_notebook = timed_autograde(course_dir, intake.inspect(incoming, chapters).accepted)
    scores = report.totals(report.gradebook_scores(course_dir))
    return {"total": total, "per_notebook": per_notebook, "scores": scores}


def print_overhead(timings: dict, chapters: list[str]) -> None:
    stock, hardened = timings["stock"], timings["hardened"]
    print("Per-notebook autograde time, one student's correct notebooks (seconds)")
    print(f"{'chapter':<10}{'stock':>8}{'hardened':>10}{'overhead':>10}   score (hardened)")
    for chapter in chapters:
        pair = (STUDENT, chapter)
        plain, safe = stock["per_notebook"][pair], hardened["per_notebook"][pair]
        got, top = hardened["scores"][pair]
        print(
            f"{chapter:<10}{plain:>8.2f}{safe:>10.2f}{safe / plain - 1:>+10.0%}   {got:g}/{top:g}"
        )
    plain_mean = sum(stock["per_notebook"].values()) / len(chapters)
    safe_mean = sum(hardened["per_notebook"].values()) / len(chapters)
    print(f"{'mean':<10}{plain_mean:>8.2f}{safe_mean:>10.2f}{safe_mean / plain_mean - 1:>+10.0%}")
    for name, run in (("stock", stock), ("hardened", hardened)):
        startup = run["total"] - sum(run["per_notebook"].values())
        thirty = startup + 30 * sum(run["per_notebook"].values()) / len(chapters)
        print(
            f"{name}: {len(chapters)} notebooks in {run['total']:.1f} s (nbgrader's start "
            f"{startup:.1f} s); 30 notebooks, extrapolated: {thirty:.0f} s"
        )
    print()


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bad_submissions_{name}", BANK / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def print_bank(folder: Path, chapter: str) -> None:
    """Grade every class of the bad bank on ``chapter`` in one call and tabulate it."""
    runtime, files = load("runtime").RUNTIME, load("files").FILES
    course_dir = make_course(folder, [chapter], "hardened", BANK_CAPS)
    solution = notebooks.read(REPO / "solutions" / chapter / f"{chapter}.ipynb")
    release = notebooks.read(course_dir / "exercises" / chapter / f"{chapter}.ipynb")
    broken = notebooks.tasks_of(solution)[1].name
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    incoming = folder / "incoming"
    for name, entry in runtime.items():
        code = entry["code"].format(
            solution=str(course_dir / "solutions" / chapter / f"{chapter}.ipynb"),
            gradebook=str(course_dir / "gradebook.db"),
            course=str(course_dir),
            port=listener.getsockname()[1],
        )
        notebooks.write(
            broken_submission(solution, release, broken, code),
            incoming / name / chapter / f"{chapter}.ipynb",
        )
    for name, entry in files.items():
        entry["write"](incoming / name / chapter, chapter, nbformat.writes(solution), course_dir)
    found = intake.inspect(incoming, [chapter])
    total, per_notebook = timed_autograde(course_dir, found.accepted)
    GradebookWriter(course_dir).record_zeros((p.student, p.chapter) for p in found.rejected)
    listener.close()
    seconds = {student: took for (student, _), took in per_notebook.items()}
    scores = report.totals(report.gradebook_scores(course_dir))
    reasons = {problem.student: problem.reason for problem in found.problems}
    print(f"Bad submissions on {chapter} (task {broken!r} broken), caps: cell 10 s, notebook 90 s,")
    print(f"output 1 MiB, 64 processes, memory 2 GiB; {total:.0f} s in all")
    print(f"{'class':<26}{'score':>7}{'time s':>8}   reason shown")
    for name in [*runtime, *files]:
        got, top = scores.get((name, chapter), (0.0, 0.0))
        if name in runtime:
            reason = first_error_of(course_dir, name, chapter, f"{broken}-solution")
        else:
            reason = reasons.get(name, "")
        took = f"{seconds[name]:.1f}" if name in seconds else "-"
        print(f"{name:<26}{f'{got:g}/{top:g}':>7}{took:>8}   {reason[:110]}")


def broken_submission(solution, release, task: str, code: str):
    """The release with every solution filled in, ``code`` first in ``task``'s."""
    from helpers import filled_release

    return filled_release(solution, release, prepend={f"{task}-solution": f"{code}\n"})


def first_error_of(course_dir: Path, student: str, chapter: str, cell_id: str) -> str:
    path = course_dir / "autograded" / student / chapter / f"{chapter}.ipynb"
    if not path.exists():
        return "(not autograded)"
    for cell in notebooks.read(path).cells:
        if notebooks.nbgrader_meta(cell).get("grade_id") == cell_id:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    return f"{output.get('ename')}: {output.get('evalue')}".replace("\n", " ")
    return ""


if __name__ == "__main__":
    main()
