"""Reading Sluice's own reports back the way a browser or a Markdown renderer would.

Shared by the tests that check the counts agree across outputs and that hostile column names
cannot inject anything: HTML is parsed with the standard library's HTMLParser (what matters is the
element tree a browser builds, not what the source looks like), Markdown is split on the rules
GitHub's renderer uses for code spans and table cells.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser


class Page(HTMLParser):
    """Every element and attribute of an HTML page, and its text by element."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.texts: list[tuple[str, str]] = []  # (innermost open element, text)
        self._open: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]
        if tag not in ("meta", "br", "img", "rect", "line", "path"):
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open and self._open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.texts.append((self._open[-1] if self._open else "", data))

    def text_of(self, tag: str) -> list[str]:
        return [t for where, t in self.texts if where == tag]

    @property
    def all_text(self) -> str:
        return "".join(t for _, t in self.texts)

    def active_content(self) -> list[str]:
        """Anything that would run or load: script/iframe/object elements, on* handlers, js: URLs."""
        found = [t for t in self.tags if t in ("script", "iframe", "object", "embed", "base", "link")]
        found += [f"{tag} {name}" for tag, name, _ in self.attributes if name.lower().startswith("on")]
        found += [
            f"{tag} {name}={value}"
            for tag, name, value in self.attributes
            if name.lower() in ("href", "src", "xlink:href", "action") and value.strip()
        ]
        return found


_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def markdown_without_code(text: str) -> str:
    """Markdown with its code spans removed: what remains is rendered as Markdown/inline HTML."""
    return _CODE_SPAN.sub("", text)


def table_cells(line: str) -> list[str]:
    """A GFM table row's cells: split on pipes that are not backslash-escaped."""
    inner = line.strip()[1:-1]
    return re.split(r"(?<!\\)\|", inner)
