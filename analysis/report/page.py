"""report.md and a self-contained report.html (figures embedded) from titled sections."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field

from analysis.emergence.rule import COLOURS


@dataclass
class Section:
    title: str
    text: str = ""  # markdown paragraphs (plain text with simple lists)
    table: list[dict] | None = None
    figures: list[str] = field(default_factory=list)  # file names under plots/


def _md_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(r.get(h)) for h in head) + " |" for r in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else ""  # a missing number is left blank, never "nan"
    return "" if value is None else str(value)


def markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", "", s.text, ""]
        if s.table:
            out += [_md_table(s.table), ""]
        out += [f"![{name}](plots/{name})" for name in s.figures] + [""]
    return "\n".join(out)




def _td(value) -> str:
    text = _cell(value)
    word = text.split(": ")[-1] if isinstance(value, str) else ""
    colour = COLOURS.get(word)
    style = f" style='color:{colour};font-weight:600'" if colour else ""
    return f"<td{style}>{html.escape(text)}</td>"


def html_page(title: str, sections: list[Section], images: dict[str, bytes]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px}"
             "th{background:#f3f3f3}img{max-width:100%}pre{white-space:pre-wrap}"
             ".scroll{overflow-x:auto;max-width:100%}td:last-child{min-width:22em}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append("<p>" + html.escape(s.text).replace("\n", "<br>") + "</p>")
        if s.table:
            head = list(s.table[0])
            parts.append("<div class='scroll'><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
                         + "</tr>")
            for row in s.table:
                parts.append("<tr>" + "".join(_td(row.get(h)) for h in head) + "</tr>")
            parts.append("</table></div>")
        for name in s.figures:
            data = base64.b64encode(images[name]).decode()
            parts.append(f"<p><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)
