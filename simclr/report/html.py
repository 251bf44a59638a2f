"""One self-contained HTML page: inline CSS, PNGs as base64 data URIs, nothing fetched."""

from __future__ import annotations

import base64
import html
from pathlib import Path

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1100px; padding: 24px; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #3b6fb6; padding-bottom: 4px; margin-top: 1.8em; }
.meta { color: #555; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
th { background: #eef3fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 12px 0; display: inline-block; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; }
.note { color: #8a5a00; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def image(path: Path, caption: str, width: int | None = None) -> str:
    """``<figure>`` with the PNG at ``path`` inlined as a data URI."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    style = f' style="width:{width}px"' if width else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}"{style}><figcaption>{esc(caption)}</figcaption></figure>'


def table(rows: list[tuple[object, ...]], header: tuple[str, ...] | None = None) -> str:
    """An HTML table; numbers are right-aligned."""
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{esc(cell)}</th>" for cell in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>")
    return "".join(out) + "</table>"


def _cell(value: object) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{esc(value)}</td>' if numeric else f"<td>{esc(value)}</td>"


def markdown(text: str) -> str:
    """Markdown as it is: pipe tables become HTML tables, headings headings, "- " lines a list, the rest <pre>."""
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append([cell.strip() for cell in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in rows if not all(set(c) <= set(":- ") and c for c in r)]  # drop |---|:--:| rows
            blocks.append(table([tuple(r) for r in body[1:]], tuple(body[0])) if body else "")
            continue
        if line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{esc(lines[i][2:].strip())}</li>")
                i += 1
            blocks.append("<ul>" + "".join(items) + "</ul>")
            continue
        if line.startswith("#"):
            blocks.append(f"<h3>{esc(line.lstrip('#').strip())}</h3>")
        elif line.strip():
            blocks.append(f"<pre>{esc(line)}</pre>")
        i += 1
    return "\n".join(blocks)


def page(title: str, subtitle: str, sections: list[tuple[str, str]]) -> str:
    """The whole document; ``sections`` are (heading, HTML body) pairs."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1><p class=\"meta\">{esc(subtitle)}</p>",
    ]
    for heading, body in sections:
        slug = "".join(c if c.isalnum() else "-" for c in heading.lower())
        parts.append(f'<section id="{slug}"><h2>{esc(heading)}</h2>{body}</section>')
    parts.append("</body></html>")
    return "\n".join(parts)
