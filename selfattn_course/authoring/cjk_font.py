"""The book's Chinese web font: Noto Sans SC's faces, narrowed to CJK code points.

@fontsource/noto-sans-sc (npm, pinned in package.json) ships one stylesheet per weight, about a
hundred ``@font-face`` rules, each naming one woff2 slice of the font and, in ``unicode-range``,
the characters it holds, so a browser downloads only the slices a page's text needs. Those ranges
also hold Latin letters, digits and punctuation (the most frequent slice has all of ASCII), which
the book wants drawn in the theme's own font. This module rewrites the stylesheets so each face
covers only the CJK blocks below (``CJK_RANGES``): "Noto Sans SC" can then come FIRST in the
page's font stack (book/_static/cjk.css), drawing every Chinese character and never a Latin one.

It must come first. Placed after the theme's fonts (Chromium 156, on a machine with no CJK font),
the first Chinese text of a page (a chapter's question) stayed as empty boxes after its slices
had loaded, as if its shaping with the fallback font, from while they were loading, were kept;
with the font first, the same page draws it. tests/test_book.py checks the drawn fonts.

Faces left with no CJK character (the latin, cyrillic, vietnamese slices) are dropped, and so is
each face's woff fallback: every browser the theme supports reads woff2.

Command line (``make book`` runs it when it vendors the font; stylesheets in, one out). It uses
only the standard library, so it runs as a script with any Python 3.9+, no venv needed::

    python3 selfattn_course/authoring/cjk_font.py 400.css 700.css > noto-sans-sc.css
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

__all__ = ["CJK_RANGES", "cjk_stylesheet", "main"]

# Inclusive code-point ranges of the CJK blocks, in order.
CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x2E80, 0x9FFF),  # radicals, symbols and punctuation (、。「」), kana, ideographs, ext. A
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0xFE10, 0xFE1F),  # vertical forms
    (0xFE30, 0xFE6F),  # compatibility and small forms
    (0xFF00, 0xFFEF),  # halfwidth and fullwidth forms (，：？（）)
    (0x20000, 0x3FFFF),  # supplementary ideographs (ext. B and later)
)

# A face and the comment fontsource writes above it: /* noto-sans-sc-[4]-400-normal */
_FACE = re.compile(r"(?:/\*(?P<name>[^*]*)\*/\s*)?@font-face\s*\{(?P<body>[^}]*)\}")
_UNICODE_RANGE = re.compile(r"unicode-range:\s*(?P<value>[^;]+);")
_WOFF_FALLBACK = re.compile(r",\s*url\([^)]*\.woff\)\s*format\('woff'\)")


def parse_unicode_range(value: str) -> list[tuple[int, int]]:
    """``U+20-22,U+4e00,U+4??`` as inclusive (first, last) code points."""
    ranges = []
    for part in value.split(","):
        token = part.strip().upper().removeprefix("U+")
        if "?" in token:
            first, last = int(token.replace("?", "0"), 16), int(token.replace("?", "F"), 16)
        elif "-" in token:
            first, last = (int(end, 16) for end in token.split("-"))
        else:
            first = last = int(token, 16)
        ranges.append((first, last))
    return ranges


def format_unicode_range(ranges: list[tuple[int, int]]) -> str:
    return ",".join(f"U+{a:x}" if a == b else f"U+{a:x}-{b:x}" for a, b in ranges)


def cjk_part(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``ranges`` inside ``CJK_RANGES``."""
    kept = []
    for first, last in ranges:
        for cjk_first, cjk_last in CJK_RANGES:
            low, high = max(first, cjk_first), min(last, cjk_last)
            if low <= high:
                kept.append((low, high))
    return kept


def cjk_stylesheet(css: str) -> str:
    """Each ``@font-face`` of ``css`` with its unicode-range narrowed to CJK and no woff fallback;
    the faces with no CJK character left, and everything outside the faces, are dropped."""
    faces = []
    for face in _FACE.finditer(css):
        body = face.group("body")
        declared = _UNICODE_RANGE.search(body)
        if declared is None:
            continue  # a face for every character (the package's one-file variant): not wanted
        kept = cjk_part(parse_unicode_range(declared.group("value")))
        if kept:
            body = body.replace(declared.group("value"), format_unicode_range(kept))
            name = f"/*{face.group('name')}*/\n" if face.group("name") else ""
            faces.append(name + "@font-face {" + _WOFF_FALLBACK.sub("", body) + "}\n")
    return "".join(faces)


def main(argv: list[str] | None = None) -> int:
    sheets = sys.argv[1:] if argv is None else argv
    if not sheets:
        print("usage: python3 cjk_font.py SHEET.css... > OUT.css", file=sys.stderr)
        return 2
    css = "".join(Path(sheet).read_text(encoding="utf-8") for sheet in sheets)
    sys.stdout.write(cjk_stylesheet(css))
    return 0


if __name__ == "__main__":
    sys.exit(main())
