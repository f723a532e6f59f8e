"""The ``selfattn-course`` command (release, grade, feedback, check, validate): parses, calls grading/.

::

    selfattn-course release [chNN ...]        nbgrader generate_assignment: solutions/ -> exercises/
    selfattn-course grade SUBMISSIONS         autograde <SUBMISSIONS>/<student>/<chNN>/<chNN>.ipynb,
                                              print a table, write a CSV; --workers N or
                                              --scheduler tcp://HOST:PORT: in parallel
                                              (grading/parallel.py), reruns resume
    selfattn-course feedback [chNN ...]       nbgrader generate_feedback: HTML in feedback/
    selfattn-course check NOTEBOOK            run a notebook's visible tests, report each task;
                                              exit 0 only if all pass (for learners)
    selfattn-course validate NOTEBOOK         grade a notebook as autograde does, visible and hidden
                                              tests; exit 0 only if all pass (for instructors)

``release``, ``grade`` and ``feedback`` work on the course directory (``--course-dir``, default:
the nearest folder at or above the working directory with ``nbgrader_config.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="selfattn-course",
        description="Release, grade and check the course's exercise notebooks.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def with_course_dir(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--course-dir",
            type=Path,
            default=None,
            help="the folder with nbgrader_config.py (default: found from here)",
        )
        return sub

    release = with_course_dir(
        commands.add_parser(
            "release", help="generate exercises/ from solutions/ (all chapters or some)"
        )
    )
    release.add_argument("chapters", nargs="*", metavar="chNN")

    grade = with_course_dir(
        commands.add_parser(
            "grade",
            help="autograde a folder of submissions laid out as <student>/<chNN>/<chNN>.ipynb",
        )
    )
    grade.add_argument("submissions", type=Path, metavar="SUBMISSIONS")
    grade.add_argument(
        "--csv",
        type=Path,
        default=None,
        help="where to write the per-task CSV (default: <course-dir>/grades.csv)",
    )
    grade.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="grade even where no sandbox can be made, running students' code unconfined "
        "(only for code you trust)",
    )
    grade.add_argument(
        "--workers",
        nargs="?",
        const="auto",
        default=None,
        metavar="N",
        help="grade (learner, chapter) units in N processes at once, one gradebook writer "
        "(N left out: the cores that fit the kernels' memory cap); reruns grade only what "
        "is new or changed",
    )
    grade.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="grade the units on the Dask distributed cluster of this scheduler",
    )
    grade.add_argument(
        "--force",
        action="store_true",
        help="with --workers or --scheduler: regrade every submission, changed or not",
    )

    feedback = with_course_dir(
        commands.add_parser(
            "feedback", help="nbgrader generate_feedback for the autograded chapters"
        )
    )
    feedback.add_argument("chapters", nargs="*", metavar="chNN")

    check = commands.add_parser(
        "check", help="run a notebook and report its tests; exit 0 only when all pass"
    )
    check.add_argument("notebook", type=Path, metavar="NOTEBOOK")
    check.add_argument(
        "--timeout", type=int, default=120, help="seconds each cell may run (default 120)"
    )

    validate = commands.add_parser(
        "validate",
        help="grade a source notebook as autograde does (hidden tests too); exit 0 only when all pass",
    )
    validate.add_argument("notebook", type=Path, metavar="NOTEBOOK")
    validate.add_argument(
        "--timeout", type=int, default=120, help="seconds each cell may run (default 120)"
    )
    validate.add_argument(
        "--seed", type=int, default=None, help="the grading run's seed (default: a fresh one)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("check", "validate"):
            return _check(args)
        from selfattn_course.grading.classroom import course

        course_dir = args.course_dir.resolve() if args.course_dir else course.find_course_dir()
        if args.command == "release":
            return _report_runs(course.release(course_dir, args.chapters), "released")
        if args.command == "grade":
            return _grade(course_dir, args)
        return _report_runs(course.feedback(course_dir, args.chapters), "feedback written")
    except (FileNotFoundError, ValueError) as error:
        print(f"selfattn-course {args.command}: {error}", file=sys.stderr)
        return 2


def _report_runs(runs, done: str) -> int:
    for run in runs:
        if not run.ok:
            sys.stderr.write(run.log)
            print(f"nbgrader {' '.join(run.args)} failed (exit {run.returncode})", file=sys.stderr)
            return 1
        print(f"nbgrader {' '.join(run.args)}: {done}")
    return 0


def _grade(course_dir: Path, args: argparse.Namespace) -> int:
    from selfattn_course.grading.autograde import sandbox
    from selfattn_course.grading.classroom import course, intake, report
    from selfattn_course.grading.classroom.progress import ProgressBar

    found = intake.inspect(args.submissions, course.chapters(course_dir))
    if not found.pairs:
        raise FileNotFoundError(
            f"no submissions <student>/<chNN>/<chNN>.ipynb under {args.submissions}"
        )
    available, why_not = sandbox.sandbox_available()
    if not available and not args.unsafe_no_sandbox:
        print(f"selfattn-course grade: cannot sandbox student code: {why_not}", file=sys.stderr)
        return 2
    if not available:
        print("selfattn-course grade: WARNING: grading WITHOUT a sandbox", file=sys.stderr)
    if args.workers is not None or args.scheduler is not None:
        return _grade_parallel(course_dir, args, found)
    bar = ProgressBar(len(found.accepted), label="autograding")
    graded = intake.grade(
        course_dir,
        found,
        unsafe_no_sandbox=args.unsafe_no_sandbox,
        on_notebook=lambda student, chapter: bar.advance(f"{student} {chapter}"),
    )
    bar.close()
    scores = report.gradebook_scores(course_dir, graded.intake.pairs)
    print(report.format_table(scores))
    if graded.intake.problems:
        print(intake.format_problems(graded.intake.problems))
    csv_path = intake.write_csv(
        scores, graded.intake.problems, args.csv or course_dir / "grades.csv"
    )
    print(f"per-task scores: {csv_path}")
    for problem in graded.intake.rejected:
        print(
            f"nbgrader could not grade {problem.student}/{problem.chapter}: {problem.reason}; "
            "it scores 0",
            file=sys.stderr,
        )
    nbgrader_broke = graded.run is not None and not graded.run.ok and not graded.run.failed
    if graded.unexpected_failures or nbgrader_broke:
        for run in graded.run.runs:
            if not run.ok:
                sys.stderr.write(run.log)
    for student, chapter in graded.unexpected_failures:
        print(f"nbgrader could not grade {student}/{chapter} (its log is above)", file=sys.stderr)
    return 1 if graded.intake.rejected or graded.unexpected_failures or nbgrader_broke else 0


def _grade_parallel(course_dir: Path, args: argparse.Namespace, found) -> int:
    from selfattn_course.grading.classroom import intake, parallel, report

    if args.scheduler is not None:
        runner = parallel.DaskRunner(args.scheduler)
    elif args.workers == "auto":
        cap = parallel.memory_cap_bytes(course_dir)
        workers = parallel.default_workers(cap)
        print(
            f"grading with {workers} worker(s): {parallel.usable_cores()} cores, "
            f"{parallel.machine_memory_bytes() / 2**30:.1f} GiB of memory, "
            f"{cap / 2**30:g} GiB per kernel (c.SandboxedKernelManager.memory_bytes)"
        )
        runner = parallel.LocalRunner(workers)
    else:
        try:
            workers = int(args.workers)
        except ValueError:
            raise ValueError(f"--workers takes a number, got {args.workers!r}") from None
        if workers < 1:
            raise ValueError(f"--workers takes a number >= 1, got {workers}")
        runner = parallel.LocalRunner(workers)
    graded = parallel.grade_parallel(
        course_dir,
        found,
        runner,
        force=args.force,
        unsafe_no_sandbox=args.unsafe_no_sandbox,
    )
    scores = report.gradebook_scores(course_dir, found.pairs)
    print(report.format_table(scores))
    problems = sorted(
        found.problems + graded.failed, key=lambda p: (p.student, p.chapter, p.graded)
    )
    if problems:
        print(intake.format_problems(problems))
    csv_path = intake.write_csv(scores, problems, args.csv or course_dir / "grades.csv")
    print(f"per-task scores: {csv_path}")
    print(graded.summary.format())
    for problem in [*found.rejected, *graded.failed]:
        print(
            f"could not grade {problem.student}/{problem.chapter}: {problem.reason}; it scores 0",
            file=sys.stderr,
        )
    return 1 if found.rejected or graded.failed else 0


def _check(args: argparse.Namespace) -> int:
    from selfattn_course.grading.autograde.local_run import check_notebook, validate_notebook

    if not args.notebook.is_file():
        raise FileNotFoundError(f"no notebook at {args.notebook}")
    if args.command == "validate":
        outcome = validate_notebook(args.notebook, timeout=args.timeout, seed=args.seed)
    else:
        outcome = check_notebook(args.notebook, timeout=args.timeout)
    print(outcome.summary())
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
