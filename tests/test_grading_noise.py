"""What an instructor reads as trouble when nothing is wrong: warnings and nameless learners.

- nbgrader warns ``Attribute 'checksum' for cell ... has changed!`` for every test cell of an
  unmodified submission (the release removed its hidden tests; nbgrader #1961):
  ``OverwriteCellsQuietly`` says nothing for a test cell as released, and still warns for one
  the learner changed;
- traitlets warns ``Config option 'display_data_priority' not recognized by 'HideHiddenTests'``
  on every feedback run (nbconvert's HTML exporter sets it for every preprocessor);
- a learner with a submission who was never added shows as "None, None" in the formgrader: the
  grading pipeline adds each with its id as first name, and so does the course's
  ``post_convert_hook`` after a plain ``nbgrader autograde``.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest
from helpers import released_course
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells
from traitlets.config import Config

from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde.preprocessors import HideHiddenTests, OverwriteCellsQuietly
from selfattn_course.grading.classroom import intake, pipeline, pools

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def course_dir(tmp_path_factory) -> Path:
    return released_course(REPO, tmp_path_factory.mktemp("noise") / "course", ["ch01"])


class Recorded(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.warnings: list[str] = []

    def emit(self, record):
        if record.levelno >= logging.WARNING:
            self.warnings.append(record.getMessage())


def recording_logger(name: str) -> tuple[logging.Logger, Recorded]:
    logger = logging.getLogger(f"test_grading_noise.{name}")
    logger.propagate = False
    handler = Recorded()
    logger.handlers[:] = [handler]
    return logger, handler


def overwrite(preprocessor_class, course_dir: Path, notebook) -> list[str]:
    """The warnings ``preprocessor_class`` (an OverwriteCells) logs on ``notebook``."""
    logger, recorded = recording_logger(preprocessor_class.__name__)
    resources = {
        "nbgrader": {
            "notebook": "ch01",
            "assignment": "ch01",
            "db_url": f"sqlite:///{course_dir / 'gradebook.db'}",
        }
    }
    preprocessor_class(log=logger).preprocess(copy.deepcopy(notebook), resources)
    return recorded.warnings


def checksum_warnings(warnings: list[str]) -> list[str]:
    return [line for line in warnings if "Attribute 'checksum'" in line]


def test_an_unmodified_release_gets_no_checksum_warning(course_dir):
    release = notebooks.read(course_dir / "exercises" / "ch01" / "ch01.ipynb")
    test_cells = len(notebooks.graded_cells(release))
    assert len(checksum_warnings(overwrite(OverwriteCells, course_dir, release))) == test_cells
    assert overwrite(OverwriteCellsQuietly, course_dir, release) == []


def test_a_changed_test_cell_still_gets_its_checksum_warning(course_dir):
    release = notebooks.read(course_dir / "exercises" / "ch01" / "ch01.ipynb")
    changed = notebooks.graded_cells(release)[0]
    changed.source += "\ncheck = lambda *args, **kwargs: None"
    grade_id = notebooks.nbgrader_meta(changed)["grade_id"]
    (warning,) = checksum_warnings(overwrite(OverwriteCellsQuietly, course_dir, release))
    assert f"for cell {grade_id} has changed" in warning


def test_the_course_sanitizes_with_the_quiet_overwrite_and_nbgraders_other_steps():
    from nbgrader.converters.autograde import Autograde
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    steps = [step.rsplit(".", 1)[-1] for step in config.Autograde.sanitize_preprocessors]
    defaults = [
        step.__name__ for step in Autograde.class_traits()["sanitize_preprocessors"].default()
    ]
    assert steps == [
        "OverwriteCellsQuietly" if name == "OverwriteCells" else name for name in defaults
    ]
    assert issubclass(OverwriteCellsQuietly, OverwriteCells)  # so add_missing_cells applies


def test_hide_hidden_tests_takes_the_exporters_display_data_priority():
    config = Config({"NbConvertBase": {"display_data_priority": ["text/html", "text/plain"]}})

    class PlainPreprocessor(NbGraderPreprocessor):
        pass

    for preprocessor_class, expected in ((PlainPreprocessor, 1), (HideHiddenTests, 0)):
        logger, recorded = recording_logger(preprocessor_class.__name__)
        preprocessor_class(config=config, log=logger)
        not_recognized = [line for line in recorded.warnings if "not recognized" in line]
        assert len(not_recognized) == expected, (preprocessor_class, recorded.warnings)
    assert HideHiddenTests(config=config).display_data_priority == ["text/html", "text/plain"]


def test_every_learner_found_gets_a_name_and_an_instructors_names_stay(course_dir, tmp_path):
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        gradebook.add_student("frank", first_name="Frank", last_name="Lee")
        gradebook.add_student("gina")  # as nbgrader's own autograde adds a learner: no name
    (course_dir / "submitted" / "erin" / "ch01").mkdir(parents=True)  # collected, not graded
    broken = tmp_path / "incoming" / "dave" / "ch01" / "ch01.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text("not a notebook")  # rejected by the intake: it scores 0
    for student in ("frank", "gina"):
        (tmp_path / "incoming" / student / "ch01").mkdir(parents=True)  # no notebook: 0
    found = intake.inspect(tmp_path / "incoming", ["ch01"])
    assert not found.accepted
    pipeline.grade_class(course_dir, found, pools.LocalPool(1))
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        names = {s.id: (s.first_name, s.last_name) for s in gradebook.students}
    assert names == {
        "dave": ("dave", None),
        "erin": ("erin", None),
        "frank": ("Frank", "Lee"),
        "gina": ("gina", None),
    }


def test_after_plain_nbgrader_autograde_the_hook_names_every_unnamed_learner(
    course_dir, monkeypatch
):
    from traitlets.config.loader import PyFileConfigLoader

    from selfattn_course.grading.autograde.execute import name_unnamed_learners

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert config.Autograde.post_convert_hook.endswith(".execute.name_unnamed_learners")
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        gradebook.update_or_create_student("ian")  # as nbgrader autograde adds a learner
        gradebook.update_or_create_student("jo", last_name="Smith")
    monkeypatch.chdir(course_dir)  # nbgrader runs in the course folder: its gradebook
    name_unnamed_learners(assignment="ch01", student="*", notebooks=[])
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        names = {s.id: (s.first_name, s.last_name) for s in gradebook.students}
    assert names["ian"] == ("ian", None)
    assert names["jo"] == (None, "Smith")


def test_the_course_config_is_json_serializable_as_the_formgrader_shows_it():
    """formgrader --debug logs "Formgrader config is not serializable" when ``json.dumps`` fails
    on its config: nothing of the course's may be a class, a function or a lazy value."""
    import json

    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert json.loads(json.dumps(config))["Autograde"]["post_convert_hook"]
