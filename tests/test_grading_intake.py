"""Intake (selfattn_course/grading/classroom/intake.py) never lets one learner's folder stop the
class, and refuses what it would be costly to read, from the file system's word alone.

Fast: no nbgrader, no kernel; each test writes a small class by hand.
"""

from __future__ import annotations

import json
import os
from datetime import UTC
from pathlib import Path

import pytest

from selfattn_course.grading.classroom import intake

REPO = Path(__file__).resolve().parents[1]
RELEASE = REPO / "exercises" / "ch01" / "ch01.ipynb"


def hand_in(root: Path, student: str, data: bytes | None = None) -> Path:
    """``root/<student>/ch01/ch01.ipynb`` holding ``data`` (default: the released notebook)."""
    folder = root / student / "ch01"
    folder.mkdir(parents=True)
    (folder / "ch01.ipynb").write_bytes(RELEASE.read_bytes() if data is None else data)
    return folder


def deeply_nested_notebook(depth: int) -> bytes:
    notebook = json.loads(RELEASE.read_text())
    notebook["metadata"]["deep"] = "@"
    text = json.dumps(notebook)
    return text.replace('"@"', "[" * depth + "]" * depth).encode()


def test_a_notebook_nested_too_deeply_for_the_json_parser_scores_0_and_the_class_goes_on(
    tmp_path,
):
    hand_in(tmp_path, "deep", deeply_nested_notebook(100_000))
    hand_in(tmp_path, "honest")
    found = intake.inspect(tmp_path, ["ch01"])
    assert [s.student for s in found.accepted] == ["honest"]
    (problem,) = found.rejected
    assert problem.student == "deep"
    assert "nested too deeply" in problem.reason


def test_any_error_while_reading_one_folder_becomes_that_folders_reason(tmp_path, monkeypatch):
    hand_in(tmp_path, "alice")
    hand_in(tmp_path, "bob")

    def broken_for_alice(path):
        if "alice" in str(path):
            raise MemoryError("the parser ran out of memory")
        return None

    monkeypatch.setattr(intake, "notebook_error", broken_for_alice)
    found = intake.inspect(tmp_path, ["ch01"])
    assert [s.student for s in found.accepted] == ["bob"]
    (problem,) = found.rejected
    assert (
        problem.reason == "alice/ch01 could not be read: MemoryError: the parser ran out of memory"
    )


def test_a_sparse_file_counts_at_its_full_size_and_is_never_read(tmp_path, monkeypatch):
    folder = hand_in(tmp_path, "sparse")
    with open(folder / "data.bin", "wb") as handle:  # 1 GiB stated, almost nothing on disk
        handle.truncate(2**30)
    read = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or b"")
    found = intake.inspect(tmp_path, ["ch01"])
    (problem,) = found.rejected
    assert problem.reason == "sparse/ch01 holds 1024 MiB of files, more than 64 MiB"
    assert read == []


def test_a_folder_just_under_the_cap_is_accepted(tmp_path):
    folder = hand_in(tmp_path, "notes")
    size = intake.MAX_FOLDER_BYTES - os.path.getsize(folder / "ch01.ipynb") - 4096
    with open(folder / "notes.txt", "wb") as handle:
        handle.write(b"x" * size)
    found = intake.inspect(tmp_path, ["ch01"])
    assert [s.student for s in found.accepted] == ["notes"]


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_notebook_error_names_deep_nesting(tmp_path, depth):
    (tmp_path / "ch01.ipynb").write_bytes(deeply_nested_notebook(depth))
    assert intake.notebook_error(tmp_path / "ch01.ipynb") is not None


# --- what the instructor's terminal is shown ------------------------------------------------------

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b31m\x00"


def test_printable_defuses_every_escape_sequence_and_keeps_text():
    from selfattn_course.grading.classroom.course import printable

    shown = printable(f"alice{ESCAPES} 自注意力\tok\n")
    assert not any(ord(char) < 32 and char not in "\t\n" for char in shown)
    assert not any(0x7F <= ord(char) <= 0x9F for char in shown)
    assert shown.endswith("red\ufffd31m\ufffd 自注意力\tok\n")


def test_a_reason_written_by_a_learner_reaches_the_table_and_csv_without_control_characters():
    from selfattn_course.grading.classroom import report

    line = report._one_line({"ename": "ValueError", "evalue": f"wrong{ESCAPES}\nsecond line"})
    assert line.startswith("ValueError: wrong\ufffd]0;owned\ufffd")
    assert "\x1b" not in line and "\x07" not in line and "\n" not in line


def test_the_grade_report_prints_no_control_character_a_learner_wrote(tmp_path):
    import io

    from selfattn_course.grading.classroom import report
    from selfattn_course.grading.classroom.pipeline import ClassGrading, Summary

    found = intake.Intake(tmp_path)
    found.problems.append(intake.Problem(f"mallory{ESCAPES}", "ch01", f"no ch01.ipynb{ESCAPES}"))
    failed = intake.Problem("eve", "ch01", f"nbgrader could not grade it: {ESCAPES}")
    grading = ClassGrading(
        found, Summary("1 worker"), [failed], {("eve", "ch01"): f"log line{ESCAPES}\n"}
    )
    out, err = io.StringIO(), io.StringIO()
    report.report_grading(grading, tmp_path, tmp_path / "grades.csv", out=out, err=err)
    shown = out.getvalue() + err.getvalue()
    assert "mallory" in shown and "eve" in shown and "log line" in shown
    assert not any(ord(char) < 32 and char not in "\t\n" for char in shown)
    assert not any(0x7F <= ord(char) <= 0x9F for char in shown)


def test_a_cell_of_more_than_256_kib_of_source_is_refused_with_its_size(tmp_path):
    notebook = json.loads(RELEASE.read_text())
    notebook["cells"][1]["source"] = "x = 1\n" * 100_000  # 600,000 bytes
    hand_in(tmp_path, "bulky", json.dumps(notebook).encode())
    (problem,) = intake.inspect(tmp_path, ["ch01"]).rejected
    assert problem.reason == (
        "ch01.ipynb is not a valid notebook: cell 2 holds 586 KiB of source, more than 256 KiB"
    )


def test_a_timestamp_a_learner_wrote_is_replaced_by_the_file_systems_time(tmp_path):
    from datetime import datetime, timedelta

    from selfattn_course.grading.classroom.course import Submission
    from selfattn_course.grading.classroom.units import TIMESTAMP_FILE, Unit

    folder = tmp_path / "mallory" / "ch02"
    folder.mkdir(parents=True)
    notebook = folder / "ch02.ipynb"
    notebook.write_text("{}")
    (folder / TIMESTAMP_FILE).write_text("2000-01-01 00:00:00.000000 UTC")
    changed = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    os.utime(notebook, (changed.timestamp(), changed.timestamp()))
    os.utime(folder / TIMESTAMP_FILE, (changed.timestamp() - 60, changed.timestamp() - 60))

    unit = Unit.from_submission(Submission("mallory", "ch02", notebook))
    assert unit.files[TIMESTAMP_FILE] == b"2026-12-07 09:30:00.000000 UTC"
    # the exchange's own timestamp (the course's submitted/, filled by nbgrader collect) is kept
    kept = Unit.from_submission(Submission("mallory", "ch02", notebook), trust_timestamp=True)
    assert kept.files[TIMESTAMP_FILE].startswith(b"2000-01-01")
    # a modification time in the future is no later than now
    future = datetime.now(UTC) + timedelta(days=400)
    os.utime(notebook, (future.timestamp(), future.timestamp()))
    unit = Unit.from_submission(Submission("mallory", "ch02", notebook))
    assert unit.files[TIMESTAMP_FILE].decode() <= datetime.now(UTC).strftime(
        "%Y-%m-%d %H:%M:%S.%f UTC"
    )
    # the learner's timestamp.txt does not change whether the folder counts as changed
    (folder / TIMESTAMP_FILE).write_text("1999-01-01 00:00:00.000000 UTC")
    again = Unit.from_submission(Submission("mallory", "ch02", notebook))
    assert again.files_sha256 == unit.files_sha256
