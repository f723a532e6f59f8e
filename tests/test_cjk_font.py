"""The book's Chinese web font stylesheet (selfattn_course/authoring/cjk_font.py): each face of
@fontsource/noto-sans-sc narrowed to CJK code points, so that no Latin character is drawn with it.

tests/test_book.py checks the result in a browser; these check the rewriting on a small sheet.
"""

from __future__ import annotations

from selfattn_course.authoring.cjk_font import (
    CJK_RANGES,
    cjk_part,
    cjk_stylesheet,
    format_unicode_range,
    main,
    parse_unicode_range,
)


def face(name: str, unicode_range: str, weight: int = 400) -> str:
    """One @font-face as fontsource writes it, woff2 then woff."""
    files = f"./files/noto-sans-sc-{name}-{weight}-normal"
    return (
        f"/* noto-sans-sc-{name}-{weight}-normal */\n@font-face {{\n"
        f"  font-family: 'Noto Sans SC';\n  font-weight: {weight};\n"
        f"  src: url({files}.woff2) format('woff2'), url({files}.woff) format('woff');\n"
        f"  unicode-range: {unicode_range};\n}}\n\n"
    )


def test_unicode_ranges_parse_and_print_in_css_syntax():
    assert parse_unicode_range("U+20-22,U+4e00, u+4??") == [
        (0x20, 0x22),
        (0x4E00, 0x4E00),
        (0x400, 0x4FF),
    ]
    assert format_unicode_range([(0x20, 0x22), (0x4E00, 0x4E00)]) == "U+20-22,U+4e00"


def test_only_the_cjk_part_of_a_range_is_kept():
    ascii_and_ideographs = [(0x20, 0x7E), (0x3001, 0x3002), (0x4E00, 0x4E01), (0xFF0C, 0xFF0C)]
    assert cjk_part(ascii_and_ideographs) == [(0x3001, 0x3002), (0x4E00, 0x4E01), (0xFF0C, 0xFF0C)]
    assert cjk_part([(0x0, 0x10FFFF)]) == list(CJK_RANGES)
    for character in "自注意力层？，：（）、。":
        assert any(first <= ord(character) <= last for first, last in CJK_RANGES), character
    for character in "Aa1 .,?“”—é":
        assert not any(first <= ord(character) <= last for first, last in CJK_RANGES), character


def test_faces_are_narrowed_faces_without_cjk_dropped_and_woff_fallbacks_removed():
    sheet = (
        face("119", "U+20-22,U+41-5a,U+4e00-4e01,U+ff1f")
        + face("latin", "U+0000-00FF,U+2000-206F")
        + face("5", "U+3001-3002", weight=700)
    )
    narrowed = cjk_stylesheet(sheet)
    assert narrowed.count("@font-face") == 2
    assert "unicode-range: U+4e00-4e01,U+ff1f;" in narrowed
    assert "unicode-range: U+3001-3002;" in narrowed
    assert "latin" not in narrowed
    assert ".woff)" not in narrowed and "format('woff')" not in narrowed
    assert "url(./files/noto-sans-sc-119-400-normal.woff2) format('woff2');" in narrowed
    assert "/* noto-sans-sc-5-700-normal */" in narrowed
    assert "font-weight: 700;" in narrowed


def test_a_face_for_every_character_is_dropped():
    every_character = "@font-face {\n  font-family: 'Noto Sans SC';\n  src: url(./all.woff2);\n}\n"
    assert cjk_stylesheet(every_character) == ""


def test_the_command_joins_its_sheets(tmp_path, capsys):
    regular, bold = tmp_path / "400.css", tmp_path / "700.css"
    regular.write_text(face("1", "U+4e00"), encoding="utf-8")
    bold.write_text(face("1", "U+4e00", weight=700), encoding="utf-8")
    assert main([str(regular), str(bold)]) == 0
    assert capsys.readouterr().out.count("@font-face") == 2
    assert main([]) == 2
