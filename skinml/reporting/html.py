"""A small builder for one-file HTML reports that open anywhere, offline.

Reports go to residents, quality leads and clinicians who will double-click a
file, so everything (plots, images, styles) is embedded; there are no
external links, scripts or fonts. The only links are relative ones to pages
written next to the report (:meth:`HtmlReport.links`).
"""

from __future__ import annotations

import base64
import html
import io
import re
from os import PathLike
from pathlib import Path
from typing import Any
from urllib.parse import quote

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1d2733;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}
h2{border-bottom:2px solid #e3e8ee;padding-bottom:.2em;margin-top:1.8em}
.sub{color:#5b6b7c;margin-top:0}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em;max-width:100%}
th,td{border:1px solid #d6dde5;padding:.3em .6em;text-align:left}td{overflow-wrap:break-word}
th{background:#f3f6f9}code{overflow-wrap:anywhere}pre{white-space:pre-wrap}img{max-width:100%}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.verdict{background:#f3f8ff;border-left:5px solid #2f6fdb;padding:.8em 1.2em;margin:1em 0}
.good{border-left-color:#2e9d5b;background:#f1faf4}.warn{border-left-color:#d9822b;background:#fdf6ee}
.bad{border-left-color:#c0392b;background:#fdf1f0}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d6dde5;border-radius:6px;padding:8px;
width:230px;font-size:.88em}.card img{width:100%;border-radius:4px}
img.plot{max-width:100%;max-height:640px}.small{font-size:.85em;color:#5b6b7c}
"""


def figure_to_data_uri(
    fig: Any, *, dpi: int = 110, save_to: str | PathLike[str] | None = None
) -> str:
    """Render a matplotlib figure to a PNG data URI and close it.

    With ``save_to`` the same PNG is also written there (rendered once, used twice).
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    if save_to is not None:
        Path(save_to).parent.mkdir(parents=True, exist_ok=True)
        Path(save_to).write_bytes(buf.getvalue())
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_to_data_uri(image: Any, *, max_side: int = 320, quality: int = 85) -> str:
    """Embed an image (path or PIL image) as a downsized JPEG data URI, metadata-free."""
    from PIL import Image

    from skinml.imaging.read import read_image

    img = read_image(image) if isinstance(image, str | Path) else image
    img = img.convert("RGB")
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    Image.frombytes("RGB", img.size, img.tobytes()).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_LONG_TOKEN = re.compile(r"\S{25,}")


def breakable(text: str) -> str:
    """Escaped ``text`` where long unbroken tokens (paths, IDs, snake_case names) may wrap.

    A ``<wbr>`` after ``/ \\ _ . -`` lets a table column shrink to a laptop screen
    without breaking ordinary words or numbers in the middle.
    """
    out, last = [], 0
    for m in _LONG_TOKEN.finditer(text):
        out.append(html.escape(text[last : m.start()]))
        out.append(re.sub(r"([/\\_.\-])", r"\1<wbr>", html.escape(m.group(0))))
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


class HtmlReport:
    """Accumulate sections, then ``write`` one self-contained HTML file."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self._parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> HtmlReport:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def paragraph(self, text: str, *, css_class: str = "") -> HtmlReport:
        cls = f' class="{css_class}"' if css_class else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")
        return self

    def verdict(self, lines: list[str], *, tone: str = "") -> HtmlReport:
        """A highlighted box for the conclusion a reader needs first."""
        items = "".join(f"<li>{html.escape(s)}</li>" for s in lines)
        self._parts.append(f'<div class="verdict {tone}"><ul>{items}</ul></div>')
        return self

    def table(self, frame: Any, *, float_format: str = "{:.3f}", index: bool = False) -> HtmlReport:
        """A pandas DataFrame as an escaped HTML table (numbers right-aligned)."""
        cols = list(frame.columns)
        head = "".join(
            f"<th>{html.escape(str(c)).replace('_', '_<wbr>')}</th>"
            for c in ([frame.index.name or ""] if index else []) + cols
        )
        rows = []
        for idx, rec in frame.iterrows():
            cells = [f"<td>{html.escape(str(idx))}</td>"] if index else []
            for c in cols:
                v = rec[c]
                if isinstance(v, float):
                    cells.append(f'<td class="num">{"" if v != v else float_format.format(v)}</td>')
                elif isinstance(v, int) and not isinstance(v, bool):
                    cells.append(f'<td class="num">{v}</td>')
                else:
                    cells.append(f"<td>{breakable(str(v))}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        self._parts.append(
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
        return self

    def figure(
        self, fig: Any, *, caption: str = "", save_to: str | PathLike[str] | None = None
    ) -> HtmlReport:
        """An embedded plot; ``save_to`` also writes it as a PNG file."""
        uri = figure_to_data_uri(fig, save_to=save_to)
        cap = f'<div class="small">{html.escape(caption)}</div>' if caption else ""
        self._parts.append(
            f'<div><img class="plot" src="{uri}" alt="{html.escape(caption)}">{cap}</div>'
        )
        return self

    def png_file(self, path: str | PathLike[str], *, caption: str = "") -> HtmlReport:
        """Embed a PNG file already on disk (e.g. a plot a pipeline saved)."""
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        cap = f'<div class="small">{html.escape(caption)}</div>' if caption else ""
        self._parts.append(
            f'<div><img class="plot" src="data:image/png;base64,{data}" '
            f'alt="{html.escape(caption or Path(path).name)}">{cap}</div>'
        )
        return self

    def image_cards(self, cards: list[tuple[Any, str]]) -> HtmlReport:
        """A grid of (image, caption) cards; images are embedded."""
        out = []
        for image, caption in cards:
            uri = image_to_data_uri(image)
            out.append(
                f'<div class="card"><img src="{uri}" alt=""><div>{html.escape(caption)}</div></div>'
            )
        self._parts.append(f'<div class="grid">{"".join(out)}</div>')
        return self

    def links(self, items: list[tuple[str, str]]) -> HtmlReport:
        """A list of relative links ``(href, text)`` to files written next to the report."""
        lis = "".join(
            f'<li><a href="{html.escape(quote(href), quote=True)}">{html.escape(text)}</a></li>'
            for href, text in items
        )
        self._parts.append(f"<ul>{lis}</ul>")
        return self

    def raw_html(self, fragment: str) -> HtmlReport:
        """Append trusted HTML built by the caller (escape user text yourself)."""
        self._parts.append(fragment)
        return self

    def render(self) -> str:
        sub = f'<p class="sub">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1>{sub}{''.join(self._parts)}</body></html>"
        )

    def write(self, path: str | PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path
