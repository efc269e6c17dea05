"""Self-contained HTML reports (spec/16_RELEASE.md, "Report"): UTF-8, an HTML5 doctype,
the Content-Security-Policy meta tag REPORT_CSP, no script, no embedded or linked
document, and no reference to anything outside the file: every `src` a data: URI, every
`href` an in-page anchor, no `url(` or `@import` in styles."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from canon import CANON
from critspec.errors import ContractError

DOCTYPE = "<!doctype html>"
FORBIDDEN_TAGS = ("script", "link", "iframe", "frame", "object", "embed", "base", "form", "meta")
URL_ATTRS = ("src", "srcset", "href", "action", "poster", "data", "background", "formaction")
CSS_REFERENCES = ("url(", "@import")


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.csp: list[str] = []
        self.problems: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "meta" and a.get("http-equiv", "").lower() == "content-security-policy":
            self.csp.append(a.get("content", ""))
        elif tag == "meta" and set(a) <= {"charset", "name", "content"}:
            pass
        elif tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}> element")
        for name, value in a.items():
            if name.startswith("on"):
                self.problems.append(f"event handler {name} on <{tag}>")
            if name in URL_ATTRS:
                ok = value.startswith("data:") if name == "src" else value.startswith("#")
                if not ok:
                    self.problems.append(f"<{tag} {name}={value[:60]!r}> refers outside the file")
            if name == "style" and any(r in value.lower() for r in CSS_REFERENCES):
                self.problems.append(f"style attribute of <{tag}> loads a resource")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and any(r in data.lower() for r in CSS_REFERENCES):
            self.problems.append("<style> loads a resource")


def validate(path: Path, cid: str) -> None:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ContractError(f"{path}: not UTF-8 (contract {cid})") from None
    if not text.lstrip().lower().startswith(DOCTYPE):
        raise ContractError(f"{path}: does not start with {DOCTYPE} (contract {cid})")
    scan = _Scan()
    scan.feed(text)
    scan.close()
    if scan.csp != [CANON.CONST.REPORT_CSP]:
        raise ContractError(
            f"{path}: Content-Security-Policy meta tags {scan.csp}, expected exactly one with "
            f"{CANON.CONST.REPORT_CSP!r} (contract {cid})"
        )
    if scan.problems:
        raise ContractError(f"{path}: {scan.problems[0]} (contract {cid})")
