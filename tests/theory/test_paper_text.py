"""The quotes behind the paper-text errata are on the stated lines of the paper's text (when the text is present,
as in the project's shared folder), and the equation numbering data match it."""

import re

from theory.claims.paper_text import CROSS_REFERENCES, EQUATION_NUMBERS, RESTATED, paper_text_path


def _lines():
    path = paper_text_path()
    return None if path is None else path.read_text(encoding="utf-8").splitlines()


def test_quotes_are_on_their_lines():
    lines = _lines()
    if lines is None:  # the text is not part of the repository; the checks carry their quotes as data
        assert all(quote for _, quote, _, _ in CROSS_REFERENCES)
        return
    for line, quote, _, _ in CROSS_REFERENCES:
        assert quote in lines[line - 1], f"line {line}: {quote!r} not found"
    for kind, number, line, _ in RESTATED:
        assert lines[line - 1].startswith(f"{kind} {number} ("), f"line {line}"
    assert "x_{t}=tx_{0}+(1-t)x_{1}" in "".join(lines).replace(" ", "")


def test_equation_numbers_match_the_text():
    lines = _lines()
    if lines is None:
        assert [first for first, *_ in EQUATION_NUMBERS] == sorted(first for first, *_ in EQUATION_NUMBERS)
        return
    for first, last, n_first, n_last in EQUATION_NUMBERS:
        numbers = [int(m) for text in lines[first - 1 : last] for m in re.findall(r"\((\d{1,2})\)$", text)]
        assert numbers[0] == n_first and numbers[-1] == n_last, (first, numbers[:3], numbers[-3:])
