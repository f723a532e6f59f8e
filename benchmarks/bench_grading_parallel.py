"""How fast the parallel grader is: notebooks/s on 1 and 2 workers, and what a class would take.

``make bench-grading`` (or ``python benchmarks/bench_grading_parallel.py [--learners N]``)
releases chapter 1 in a scratch course, then times

- one notebook alone: plain ``nbgrader autograde`` of one submission (the baseline);
- every learner in one plain ``nbgrader autograde`` call (nbgrader started once, one notebook
  after another, nothing stored by the course's pipeline);
- ``--learners`` solution notebooks through the course's pipeline (``selfattn-course grade``)
  with 1 and with 2 local workers (each run on a fresh copy of the course), as notebooks per
  second;

and prints the per-unit overhead of the pipeline over the baseline, the speedup from 1 to
2 workers, and the projected wall time of 500 learners x 30 chapters on 1, 16 and 64 cores
(the measured time per notebook, divided by the cores times the measured 2-worker efficiency).
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde.nbgrader_command import run_nbgrader
from selfattn_course.grading.classroom import intake, pipeline, pools

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # tests/helpers.py: a scratch course is made one way
CHAPTER = "ch01"
CLASS = (500, 30)  # learners x chapters of the projection


def make_course(root: Path) -> Path:
    from helpers import released_course

    return released_course(REPO, root / "course", [CHAPTER])


def make_class(folder: Path, learners: int) -> None:
    solution = notebooks.read(REPO / "solutions" / CHAPTER / f"{CHAPTER}.ipynb")
    for i in range(learners):
        notebooks.write(solution, folder / f"learner{i:03d}" / CHAPTER / f"{CHAPTER}.ipynb")


def one_notebook_alone(released: Path, root: Path) -> float:
    """Seconds of one plain ``nbgrader autograde`` call grading one submission."""
    course_dir = Path(shutil.copytree(released, root / "alone"))
    make_class(course_dir / "submitted", 1)
    started = time.perf_counter()
    run = run_nbgrader(course_dir, ["autograde", CHAPTER, "--student", "learner000"])
    seconds = time.perf_counter() - started
    if not run.ok:
        sys.exit(run.log)
    return seconds


def one_call_for_all(released: Path, incoming: Path, root: Path) -> float:
    """Wall seconds of one plain ``nbgrader autograde`` call grading every learner, one after
    another (the plain baseline: nbgrader started once, writing the gradebook itself)."""
    course_dir = Path(shutil.copytree(released, root / "serial"))
    shutil.copytree(incoming, course_dir / "submitted")
    started = time.perf_counter()
    run = run_nbgrader(course_dir, ["autograde", CHAPTER])
    seconds = time.perf_counter() - started
    if not run.ok:
        sys.exit(run.log)
    return seconds


def parallel_run(released: Path, incoming: Path, root: Path, workers: int) -> float:
    """Wall seconds of grading every learner in ``incoming`` with ``workers`` local workers."""
    course_dir = Path(shutil.copytree(released, root / f"workers{workers}"))
    found = intake.inspect(incoming, [CHAPTER])
    started = time.perf_counter()
    done = pipeline.grade_class(
        course_dir, found, pools.LocalPool(workers), progress_stream=io.StringIO()
    )
    seconds = time.perf_counter() - started
    if done.summary.failed:
        sys.exit(f"{done.summary.failed} unit(s) failed: {done.failed}")
    return seconds


def clock(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=8, help="notebooks per run (default 8)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        root = Path(scratch)
        released = make_course(root)
        incoming = root / "incoming"
        make_class(incoming, args.learners)
        alone = one_notebook_alone(released, root)
        serial = one_call_for_all(released, incoming, root)
        walls = {n: parallel_run(released, incoming, root, n) for n in (1, 2)}
    rates = {n: args.learners / wall for n, wall in walls.items()}
    per_notebook = walls[1] / args.learners
    efficiency = rates[2] / (2 * rates[1])
    print(f"chapter {CHAPTER}, {args.learners} notebooks a run, {pools.usable_cores()} cores")
    print(f"one notebook alone (plain nbgrader autograde): {alone:.2f} s")
    print(
        f"all {args.learners} in one plain nbgrader autograde call: {serial:.1f} s wall, "
        f"{args.learners / serial:.3f} notebooks/s"
    )
    for n, wall in walls.items():
        print(f"{n} worker(s): {wall:.1f} s wall, {rates[n]:.3f} notebooks/s")
    print(
        f"speedup 1 -> 2 workers: {rates[2] / rates[1]:.2f}x (efficiency {efficiency:.0%}); "
        f"2 workers against the one plain call: {serial / walls[2]:.2f}x"
    )
    print(
        f"per-unit overhead of the pipeline: {per_notebook - alone:+.2f} s "
        f"({per_notebook:.2f} s a notebook on 1 worker vs {alone:.2f} s alone)"
    )
    units = CLASS[0] * CLASS[1]
    for cores in (1, 16, 64):
        scale = 1 if cores == 1 else cores * efficiency
        print(
            f"projected {CLASS[0]} learners x {CLASS[1]} chapters on {cores} core(s): "
            f"{clock(units * per_notebook / scale)}"
        )


if __name__ == "__main__":
    main()
