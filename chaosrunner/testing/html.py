"""Read an HTML report as a person would: its visible text, and where its links point."""

from __future__ import annotations

from html.parser import HTMLParser

# Elements that a browser sets apart from their neighbours: their text never runs together.
_BLOCKS = frozenset({"p", "div", "td", "th", "tr", "li", "ul", "ol", "table", "br", "h1",
                     "h2", "h3", "h4", "h5", "h6", "section", "header", "footer", "main",
                     "details", "summary", "pre", "dt", "dd", "figcaption", "title", "svg",
                     "text", "tspan", "caption", "thead", "tbody", "body", "head", "html"})


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._skip = 0
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("style", "script")
        if tag in _BLOCKS:
            self.parts.append(" ")
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script")
        if tag in _BLOCKS:
            self.parts.append(" ")
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._link_text)))
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data)
        if self._href is not None:
            self._link_text.append(data)


def visible_text(html: str) -> str:
    """The page's text without markup, runs of white space folded to one space; text split
    into spans for line breaking (`<span>a/</span><wbr><span>b</span>`) reads whole."""
    parser = _Visible()
    parser.feed(html)
    return " ".join("".join(parser.parts).split())


def links(html: str) -> list[tuple[str, str]]:
    """Every `<a href>` of the page as (href, visible text)."""
    parser = _Visible()
    parser.feed(html)
    return parser.links
