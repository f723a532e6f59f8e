"""The ``selfattn-course`` command: it parses the command line, then calls the course's code.

::

    selfattn-course new-chapter NN SLUG       create chapter NN from the template and register it
                                              (selfattn_course/authoring/new_chapter.py)
    selfattn-course release [chNN ...]        build solutions/chNN/chNN.ipynb from chNN.md and the
                                              task specs, then nbgrader generate_assignment:
                                              solutions/ -> exercises/
    selfattn-course grade SUBMISSIONS         autograde <SUBMISSIONS>/<student>/<chNN>/<chNN>.ipynb,
                                              print a table, write a CSV; --workers N or
                                              --scheduler tcp://HOST:PORT: in parallel; reruns
                                              grade only what changed (grading/classroom/)
    selfattn-course feedback [chNN ...]       nbgrader generate_feedback: HTML in feedback/
    selfattn-course check NOTEBOOK            run a notebook's visible tests, report each task;
                                              exit 0 only if all pass (for learners)
    selfattn-course validate NOTEBOOK         grade a notebook as autograde does, visible and hidden
                                              tests; exit 0 only if all pass (for instructors)

All but ``check`` and ``validate`` work on the course directory (``--course-dir``, default: the
nearest folder at or above the working directory with ``nbgrader_config.py``). Exit codes: 0 done,
1 something failed or did not pass, 2 the command could not start (bad arguments, no such file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="selfattn-course",
        description="Write, release, grade and check the course's exercise notebooks.",
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

    new_chapter = with_course_dir(
        commands.add_parser(
            "new-chapter",
            help="create every file chapter NN needs from the template, and register it",
        )
    )
    new_chapter.add_argument("number", type=int, metavar="NN", help="the chapter's number")
    new_chapter.add_argument(
        "slug", metavar="SLUG", help="its page's name: book/chNN-SLUG.md (e.g. kv-cache)"
    )

    release = with_course_dir(
        commands.add_parser(
            "release",
            help="build the solution notebooks, then generate exercises/ (all chapters or some)",
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
        "(N left out: the cores that fit the kernels' memory cap; default: 1)",
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
        help="regrade every submission, changed since the last run or not",
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
        help="grade a source notebook as autograde does (hidden tests too); "
        "exit 0 only when all pass",
    )
    validate.add_argument("notebook", type=Path, metavar="NOTEBOOK")
    validate.add_argument(
        "--timeout", type=int, default=120, help="seconds each cell may run (default 120)"
    )
    validate.add_argument(
        "--seed", type=int, default=None, help="the grading's seed (default: a fresh one)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("check", "validate"):
            return _run_notebook(args)
        from selfattn_course.grading.classroom import course

        course_dir = args.course_dir.resolve() if args.course_dir else course.find_course_dir()
        handlers = {
            "new-chapter": _new_chapter,
            "release": _release,
            "grade": _grade,
            "feedback": _feedback,
        }
        return handlers[args.command](course_dir, args)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"selfattn-course {args.command}: {error}", file=sys.stderr)
        return 2


def _new_chapter(course_dir: Path, args: argparse.Namespace) -> int:
    from selfattn_course.authoring import new_chapter

    for path in new_chapter.create(course_dir, args.number, args.slug):
        print(f"wrote {_shown(path, course_dir)}")
    return 0


def _release(course_dir: Path, args: argparse.Namespace) -> int:
    from selfattn_course.authoring import notebooks
    from selfattn_course.grading.classroom import course

    chapters = course.select_chapters(course_dir, args.chapters)
    for path in notebooks.build(course_dir, chapters):
        print(f"built {_shown(path, course_dir)}")
    return _report_commands(course.release(course_dir, chapters), "released")


def _grade(course_dir: Path, args: argparse.Namespace) -> int:
    from selfattn_course.grading.autograde.sandbox import SandboxUnavailable
    from selfattn_course.grading.classroom import pipeline, pools, report

    pool, note = pools.pool_for(course_dir, args.workers, args.scheduler)
    if note:
        print(note)
    try:
        grading = pipeline.grade_folder(
            course_dir,
            args.submissions,
            pool,
            force=args.force,
            unsafe_no_sandbox=args.unsafe_no_sandbox,
        )
    except SandboxUnavailable as error:  # nothing was graded or written
        print(f"selfattn-course grade: {error}", file=sys.stderr)
        print("selfattn-course grade: stopped before grading: nothing was graded", file=sys.stderr)
        return 2
    return report.report_grading(grading, course_dir, args.csv or course_dir / "grades.csv")


def _feedback(course_dir: Path, args: argparse.Namespace) -> int:
    from selfattn_course.grading.classroom import course

    return _report_commands(course.feedback(course_dir, args.chapters), "feedback written")


def _report_commands(commands, done: str) -> int:
    """Say what each nbgrader command did; on the first that failed, show its log and stop."""
    for command in commands:
        if not command.ok:
            sys.stderr.write(command.log)
            print(f"{command.describe()} failed (exit {command.returncode})", file=sys.stderr)
            return 1
        print(f"{command.describe()}: {done}")
    return 0


def _run_notebook(args: argparse.Namespace) -> int:
    from selfattn_course.grading.autograde.local_run import check_notebook, validate_notebook

    if not args.notebook.is_file():
        raise FileNotFoundError(f"no notebook at {args.notebook}")
    if args.command == "validate":
        report = validate_notebook(args.notebook, timeout=args.timeout, seed=args.seed)
    else:
        report = check_notebook(args.notebook, timeout=args.timeout)
    print(report.summary())
    return 0 if report.passed else 1


def _shown(path: Path, course_dir: Path) -> str:
    """``path`` relative to the course directory where it lies inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(course_dir)) if path.is_relative_to(course_dir) else str(path)


if __name__ == "__main__":
    sys.exit(main())
