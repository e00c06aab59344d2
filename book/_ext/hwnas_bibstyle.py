"""A bibliography whose labels read like its citations: author-year.

The book cites author-year (``bibtex_reference_style: author_year``: "Tan et al.
(2019)"); pybtex's stock styles label the list itself with numbers or alpha codes.
This Sphinx extension registers the pybtex formatting style ``authoryear``: the
``unsrt`` entry format, entries sorted by author and year, and labels such as
"Tan and Le, 2019" or "Wu et al., 2019" (a, b, ... appended when two coincide).
``_config.yml`` selects it with ``bibtex_default_style: authoryear``.
"""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import latexcodec  # noqa: F401  (registers the "ulatex" codec)
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle


def _plain(text: str) -> str:
    """LaTeX accents and braces to plain text (``L\\'opez`` -> ``López``)."""
    return codecs.decode(text, "ulatex").replace("{", "").replace("}", "")


def _surname(person: Any) -> str:
    return _plain(" ".join(person.prelast_names + person.last_names))


def author_year_label(entry: Any) -> str:
    """'Surname, 2019', 'A and B, 2019', 'A et al., 2019'; the organisation or key for misc entries."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    year = entry.fields.get("year", "n.d.")
    if not people:
        who = entry.fields.get("organization") or entry.fields.get("publisher") or entry.key
        return f"{_plain(str(who))}, {year}"
    if len(people) == 1:
        names = _surname(people[0])
    elif len(people) == 2:
        names = f"{_surname(people[0])} and {_surname(people[1])}"
    else:
        names = f"{_surname(people[0])} et al."
    return f"{names}, {year}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels 'Author, year', made unique with a letter suffix."""

    def format_labels(self, sorted_entries: Iterable[Any]) -> Iterator[str]:
        entries = list(sorted_entries)
        labels = [author_year_label(e) for e in entries]
        counts = Counter(labels)
        seen: Counter[str] = Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                yield f"{label}{chr(ord('a') + seen[label] - 1)}"
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    """unsrt formatting, author-year sorting and labels."""

    default_label_style = AuthorYearLabelStyle
    default_sorting_style = SortingStyle


def setup(app: Any) -> dict[str, Any]:
    register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
