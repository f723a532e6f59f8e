"""nbgrader configuration of the course (nbgrader 0.9.6).

Layout, relative to this file (the course root):

    solutions/chNN/chNN.ipynb   source notebooks, with solutions and hidden tests
    exercises/chNN/chNN.ipynb   their releases (`selfattn-course release`), committed
    submitted/<student>/chNN/   what learners hand in; autograded/ and feedback/ beside it
    gradebook.db                nbgrader's database

One assignment per chapter, named like its folder (ch01, ch02, ...), found from solutions/ch*.
nbgrader 0.9 keeps no assignment list in its configuration (generate_assignment adds each one to
the gradebook), so the list is recorded under `SelfattnCourse.assignments`, where
`selfattn_course.grading.course` reads it.
"""

from pathlib import Path

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

course_root = Path(__file__).resolve().parent

c.CourseDirectory.root = str(course_root)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.SelfattnCourse.assignments = sorted(
    folder.name
    for folder in (course_root / "solutions").glob("ch[0-9][0-9]")
    if (folder / f"{folder.name}.ipynb").is_file()
)

# Seconds each cell may run when autograding. nbgrader reads Execute.timeout;
# ExecutePreprocessor.timeout is ignored.
c.Execute.timeout = 120

# A learner who deletes a test cell would otherwise get no score for it (not even 0 of N):
# put the missing cells back from the source before grading.
c.OverwriteCells.add_missing_cells = True
