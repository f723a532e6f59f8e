"""End-to-end test of the course book: it builds with no warning and its pages render offline.

The build is the one `make book` runs, `jupyter-book build . -W -n --keep-going --all` (every
warning is an error, every cross-reference must resolve, every page is re-read so no warning is
skipped), into the normal `_build/` folder, so the execution cache of earlier builds is reused and
an unchanged book builds in seconds. It runs once per module;
the tests below then read the HTML it wrote, and the last ones open every page in headless
Chromium (Playwright driving the system's `chromium`, installed by `make browser-deps`) with every
request off this machine blocked: no console error, the maths typeset, the Chinese text drawn with
the bundled font. Where Chromium or Playwright is missing those skip, saying why; with
SELFATTN_REQUIRE_BROWSER=1 (CI, .ci/run) they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from selfattn_course.authoring.cjk_font import CJK_RANGES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
VENDOR_TARGET = "vendor"  # the Makefile rule that vendors MathJax and the Chinese font
CDN_HOSTS = (
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "unpkg.com",
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
    """Vendor MathJax and the Chinese font (npm ci, via make) if needed, then build the book."""
    if shutil.which("make") is None or shutil.which("npm") is None:
        pytest.fail("building the book needs `make` and `npm` (Node.js) on PATH")
    vendoring = subprocess.run(["make", VENDOR_TARGET], cwd=ROOT, capture_output=True, text=True)
    if vendoring.returncode != 0:
        pytest.fail(f"`make {VENDOR_TARGET}` failed:\n{vendoring.stdout}{vendoring.stderr}")
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

    (sphinx-thebe, which wrote unpkg.com's address into an inline script, is not loaded: see
    _config.yml. The browser tests below also block every request off this machine.)
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


# --- In a browser ---------------------------------------------------------------------------------
# Each page opens in a fresh browser context (empty storage: a reader's first visit) with every
# request to another host aborted, and is read once its fonts have loaded and MathJax has typeset.

CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOTO = (
    "Noto Sans SC"  # the bundled font (_extra/fonts/noto-sans-sc), as book/_static/cjk.css names it
)
NOTO_FILES = HTML / "fonts" / "noto-sans-sc" / "files"
RAW_TEX = ("\\(", "\\)", "\\[", "\\]", "$$", "\\begin{")
NOT_PAGES = ("_static", "_sources", "_images", "mathjax", "fonts")  # folders of assets, not pages

# After the load: fonts ready, MathJax done (on pages that load it), one frame drawn.
SETTLE = """async () => {
    await document.fonts.ready;
    if (window.MathJax && window.MathJax.startup) { await window.MathJax.startup.promise; }
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}"""

# Maths as the reader sees it: TeX left outside MathJax's output (code blocks aside), how many
# math elements the page has, how many MathJax typeset, and MathJax's error boxes.
MATH_STATE = """() => {
    const body = document.body.cloneNode(true);
    body.querySelectorAll("pre, code, script, style, mjx-container").forEach((e) => e.remove());
    const math = [...document.querySelectorAll(".math")];
    return {
        text: body.textContent,
        math: math.length,
        typeset: math.filter((e) => e.querySelector("mjx-container")).length,
        errors: document.querySelectorAll("mjx-merror").length,
    };
}"""

# Marks each visible element whose own text holds CJK, and returns the text it shows (its own and
# its descendants', as Chromium reports the fonts of the whole element), element by element.
MARK_CJK = """(pattern) => {
    const cjk = new RegExp(pattern, "u");
    const marked = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const element = node.parentElement;
        if (!cjk.test(node.data) || element.hasAttribute("data-cjk-probe")) continue;
        if (!element.checkVisibility() || element.closest("script, style, title")) continue;
        element.setAttribute("data-cjk-probe", String(marked.length));
        marked.push({
            text: element.innerText,
            question: element.closest("#the-question blockquote") !== null,
        });
    }
    return marked;
}"""


def cjk_pattern() -> str:
    """A JavaScript character class of CJK_RANGES (the code points the bundled font covers)."""
    return "[" + "".join(f"\\u{{{first:x}}}-\\u{{{last:x}}}" for first, last in CJK_RANGES) + "]"


def is_cjk(character: str) -> bool:
    return any(first <= ord(character) <= last for first, last in CJK_RANGES)


@dataclass
class TextRun:
    """The text one element shows, and the fonts Chromium drew it with (glyphs per font)."""

    text: str
    in_question: bool
    fonts: dict[str, int]  # "family (custom|system)" -> glyph count

    @property
    def cjk_characters(self) -> int:
        return sum(is_cjk(c) for c in self.text)

    @property
    def noto_glyphs(self) -> int:
        return sum(n for font, n in self.fonts.items() if font == f"{NOTO} (custom)")


@dataclass
class Visit:
    """What one page did in the browser."""

    page: str  # its path under _build/html
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions
    blocked: list[str] = field(default_factory=list)  # requests to another host (aborted)
    failed: list[str] = field(default_factory=list)  # requests that got no answer
    font_files: list[str] = field(default_factory=list)  # URLs of the fonts it loaded
    math: dict = field(default_factory=dict)  # MATH_STATE
    cjk_runs: list[TextRun] = field(default_factory=list)
    english_fonts: dict[str, int] = field(default_factory=dict)  # the question's translation


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is missing (pip install -r requirements.txt)"
    if shutil.which("chromium") is None:
        return "Chromium is missing (`make browser-deps` as root, or apt-get install chromium)"
    return None


def is_local(url: str) -> bool:
    """A request the pages may make: a file of the build, inline data, or this machine."""
    parsed = urlparse(url)
    return parsed.scheme in ("file", "data", "blob") or parsed.hostname == "127.0.0.1"


def book_pages() -> list[Path]:
    """Every HTML page of the build but index.html, which only redirects to the first page."""
    pages = []
    for page in sorted(HTML.rglob("*.html")):
        if set(page.relative_to(HTML).parts) & set(NOT_PAGES):
            continue
        if 'http-equiv="Refresh"' in page.read_text(encoding="utf-8"):
            continue
        pages.append(page)
    return pages


def fonts_drawn(cdp, node_id: int) -> dict[str, int]:
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node_id})["fonts"]
    drawn: dict[str, int] = {}
    for font in fonts:
        # Chromium names the font file's own family ("Noto Sans SC Thin" for fontsource's files)
        family = NOTO if font["familyName"].startswith(NOTO) else font["familyName"]
        key = f"{family} ({'custom' if font['isCustomFont'] else 'system'})"
        drawn[key] = drawn.get(key, 0) + font["glyphCount"]
    return drawn


def visit(browser, page: Path) -> Visit:
    record = Visit(page=page.relative_to(HTML).as_posix())
    context = browser.new_context()
    try:

        def route(request_route):
            if is_local(request_route.request.url):
                request_route.continue_()
            else:
                record.blocked.append(request_route.request.url)
                request_route.abort()

        context.route("**/*", route)
        tab = context.new_page()
        tab.on("console", lambda m: record.errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda error: record.errors.append(f"uncaught {error}"))
        tab.on("requestfailed", lambda request: record.failed.append(request.url))
        tab.on(
            "requestfinished",
            lambda request: (
                record.font_files.append(request.url) if request.resource_type == "font" else None
            ),
        )
        tab.goto(page.as_uri(), wait_until="load")
        tab.evaluate(SETTLE)
        record.math = tab.evaluate(MATH_STATE)
        marked = tab.evaluate(MARK_CJK, cjk_pattern())
        cdp = context.new_cdp_session(tab)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
        for index, run in enumerate(marked):
            query = {"nodeId": root, "selector": f'[data-cjk-probe="{index}"]'}
            node_id = cdp.send("DOM.querySelector", query)["nodeId"]
            record.cjk_runs.append(TextRun(run["text"], run["question"], fonts_drawn(cdp, node_id)))
        english = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#the-question > p"})
        if english["nodeId"]:
            record.english_fonts = fonts_drawn(cdp, english["nodeId"])
    finally:
        context.close()
    return record


@pytest.fixture(scope="module")
def browser(build) -> Iterator:
    """Headless Chromium, the system's; Playwright never downloads one."""
    why_not = browser_unavailable()
    if why_not is not None:
        if os.environ.get("SELFATTN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SELFATTN_REQUIRE_BROWSER=1 but {why_not}")
        pytest.skip(why_not)
    if build.returncode != 0:
        pytest.fail("the book did not build (see test_book_builds_with_no_warning)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def visits(browser) -> dict[str, Visit]:
    """Every page of the book, opened once; keyed by path under _build/html."""
    pages = book_pages()
    assert {page_of(docname) for docname in ["book/intro", *toc_chapters()]} <= set(pages)
    return {record.page: record for record in (visit(browser, page) for page in pages)}


def chapter_visits(visits: dict[str, Visit]) -> dict[str, Visit]:
    return {docname: visits[f"{docname}.html"] for docname in toc_chapters()}


def test_no_page_logs_an_error_or_asks_the_network_for_anything(visits):
    for record in visits.values():
        assert not record.errors, f"{record.page} logs errors: {record.errors}"
        assert not record.blocked, f"{record.page} asks another host for {record.blocked}"
        assert not record.failed, f"{record.page}: these requests failed: {record.failed}"


def test_every_page_shows_its_maths_typeset_and_no_raw_tex(visits):
    for record in visits.values():
        math = record.math
        assert math["typeset"] == math["math"], (
            f"{record.page}: MathJax typeset {math['typeset']} of {math['math']} math elements"
        )
        assert math["errors"] == 0, f"{record.page}: {math['errors']} TeX errors (mjx-merror)"
        for tex in RAW_TEX:
            at = math["text"].find(tex)
            assert at < 0, (
                f"{record.page} shows raw TeX: …{math['text'][max(at - 40, 0) : at + 40]}…"
            )
    for docname, record in chapter_visits(visits).items():
        assert record.math["math"] > 0, f"{docname}: no math"


def test_chinese_text_is_drawn_with_the_bundled_font_and_latin_text_is_not(visits):
    """Every visible CJK character of every page is drawn with Noto Sans SC, loaded from the
    build; on a machine with no CJK font, any other font would draw empty boxes."""
    for record in visits.values():
        for run in record.cjk_runs:
            assert run.noto_glyphs == run.cjk_characters, (
                f"{record.page}: {run.text.strip()!r} has {run.cjk_characters} CJK characters, "
                f"{run.noto_glyphs} drawn with {NOTO}; fonts used: {run.fonts}"
            )
        for url in record.font_files:
            path = Path(unquote(urlparse(url).path))
            assert urlparse(url).scheme == "file" and path.is_relative_to(HTML), url
        if record.cjk_runs:
            noto = [url for url in record.font_files if f"/{NOTO_FILES.relative_to(HTML)}/" in url]
            assert noto, f"{record.page} shows CJK text but loaded no file of {NOTO_FILES}"
    for docname, record in chapter_visits(visits).items():
        question = [run for run in record.cjk_runs if run.in_question]
        assert question, f"{docname}: no Chinese text found in the question's quote"
        assert record.english_fonts, f"{docname}: no English translation after the question"
        assert not any(font.startswith(NOTO) for font in record.english_fonts), (
            f"{docname}: the English translation is drawn with {record.english_fonts}"
        )
