"""End-to-end test of the course book: it builds with no warning and its pages render offline.

The build is the one `make book` runs, `jupyter-book build . -W -n --keep-going --all` (every
warning is an error, every cross-reference must resolve, every page is re-read so no warning is
skipped), into the normal `_build/` folder, so the execution cache of earlier builds is reused and
an unchanged book builds in seconds. It runs once per module;
the tests below then read the HTML it wrote.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
MATHJAX_TARGET = "_extra/mathjax/tex-mml-chtml.js"  # the Makefile rule that vendors MathJax
CDN_HOSTS = (
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "unpkg.com/mathjax",
    "polyfill.io",
    "fonts.googleapis.com",
    "mathjax.org",
)
LOADED_TAGS = ("script", "img", "link", "iframe", "source")  # tags whose src/href a browser fetches
LOADED_LINKS = ("stylesheet", "preload", "modulepreload", "icon")


class _Tags(HTMLParser):
    """Collects (tag, attributes) of every start tag, and the page's text."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: Path) -> _Tags:
    parser = _Tags()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def toc_chapters() -> list[str]:
    """Docnames of the chapters listed in _toc.yml, in order (e.g. 'book/ch01-concept')."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [chapter["file"] for part in toc["parts"] for chapter in part["chapters"]]


def page_of(docname: str) -> Path:
    return HTML / f"{docname}.html"


@pytest.fixture(scope="module")
def build() -> subprocess.CompletedProcess:
    """Vendor MathJax (npm ci, via make) if needed, then build the book once."""
    if shutil.which("make") is None or shutil.which("npm") is None:
        pytest.fail("building the book needs `make` and `npm` (Node.js) on PATH")
    vendoring = subprocess.run(["make", MATHJAX_TARGET], cwd=ROOT, capture_output=True, text=True)
    if vendoring.returncode != 0:
        pytest.fail(f"`make {MATHJAX_TARGET}` failed:\n{vendoring.stdout}{vendoring.stderr}")
    bin_dir = Path(sys.executable).parent  # the venv's bin/: jupyter-book and the kernel's python
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(bin_dir / "jupyter-book"), "build", ".", "-W", "-n", "--keep-going", "--all"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def test_book_builds_with_no_warning(build):
    log = re.sub(r"\x1b\[[0-9;]*m", "", build.stdout + build.stderr)  # drop terminal colours
    warnings = [line for line in log.splitlines() if "WARNING:" in line or "ERROR:" in line]
    details = "\n".join(warnings or [log[-3000:]])
    assert build.returncode == 0, f"jupyter-book build failed:\n{details}"
    assert "build succeeded" in log


def test_every_chapter_page_has_code_outputs_a_figure_and_math(build):
    chapters = toc_chapters()
    assert chapters, "_toc.yml lists no chapter"
    for docname in chapters:
        page = page_of(docname)
        assert page.is_file(), f"{docname} is in _toc.yml but {page} was not built"
        html = page.read_text(encoding="utf-8")
        tags = parse(page).tags
        classes = [attrs.get("class", "") for _, attrs in tags]
        assert any("cell_output" in c for c in classes), f"{docname}: no executed code output"
        images = [attrs["src"] for tag, attrs in tags if tag == "img" and "src" in attrs]
        assert any("_images/" in src for src in images), f"{docname}: no figure (img)"
        for src in images:
            if not src.startswith(("http:", "https:", "data:")):
                assert (page.parent / src).resolve().is_file(), f"{docname}: no file {src}"
        assert any("math" in c.split() for c in classes) and "\\(" in html, f"{docname}: no math"


def test_every_page_loads_mathjax_from_the_local_copy(build):
    vendored = (HTML / "mathjax" / "tex-mml-chtml.js").resolve()
    assert vendored.is_file()
    for docname in ["book/intro", *toc_chapters()]:
        page = page_of(docname)
        tags = parse(page).tags
        scripts = [attrs.get("src", "") for tag, attrs in tags if tag == "script"]
        mathjax = [src for src in scripts if "tex-mml-chtml" in src]
        assert len(mathjax) == 1, f"{docname}: expected one MathJax script, got {mathjax}"
        local = (page.parent / mathjax[0].split("?")[0]).resolve()
        assert local == vendored, f"{docname} loads MathJax from {mathjax[0]}"


def test_pages_need_nothing_from_the_network_to_render(build):
    """No script, stylesheet, font or image comes from another host, and no CDN is named.

    (sphinx-thebe writes the address of its library into an inline script; it is fetched only
    when a reader clicks a live-code launch button, which this book does not show.)
    """
    for page in sorted(HTML.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        for host in CDN_HOSTS:
            assert host not in html, f"{page.relative_to(HTML)} names the CDN {host}"
        for tag, attrs in parse(page).tags:
            if tag not in LOADED_TAGS or (tag == "link" and attrs.get("rel") not in LOADED_LINKS):
                continue  # hyperlinks (<a>, <link rel="canonical">) are not fetched to render
            for name in ("src", "href"):
                url = attrs.get(name, "")
                assert not re.match(r"(https?:)?//", url), (
                    f"{page.relative_to(HTML)} loads <{tag} {name}={url!r}> from the network"
                )


def test_footer_shows_copyright_2026(build):
    for docname in ["book/intro", *toc_chapters()]:
        text = " ".join(" ".join(parse(page_of(docname)).text).split())
        assert "© Copyright 2026." in text, f"{docname}: footer lacks '© Copyright 2026.'"


def exercises_section(html: str) -> str:
    """The HTML of a chapter page's Exercises section, up to the next section."""
    start = html.index('<section id="exercises">')
    return html[start : html.index("<section", start + 1)]


def test_every_chapter_lists_its_tasks_with_their_points_and_rendered_maths(build):
    """The Exercises list ({exercise-list}, selfattn_course/authoring/exercise_directive.py) shows
    each task of the registry with its points, as the current task specs say, and its maths is
    typeset, not left as raw $...$."""
    from selfattn_course.grading.spec.registry import chapter_tasks

    for docname in toc_chapters():
        chapter = Path(docname).name[:4]
        section = exercises_section(page_of(docname).read_text(encoding="utf-8"))
        tasks = list(chapter_tasks(chapter).values())
        text = re.sub(r"<[^>]+>", "", section)
        for number, task in enumerate(tasks, start=1):
            points = f"{task.points:g} point{'' if task.points == 1 else 's'}"
            assert f"Task {number} ({points})" in text, f"{docname}: task {number} not listed"
        assert "$" not in text, f"{docname}: raw TeX left in the Exercises list"
        assert f"Task {len(tasks) + 1} (" not in text, f"{docname}: more tasks than the registry's"
