"""Look at an HTML report the way a reader will: in headless Chromium, offline.

Why: a report is only good if it reads well in a real browser on a laptop. Tests
and ``scripts/screenshot_report.py`` use these helpers to take screenshots and to
measure layout (does anything run past the right edge at 1,000 px? did every
embedded image load?). Chromium is a system package (Debian: ``apt-get install -y
chromium``); nothing is downloaded, the browser runs sandbox-free (containers)
with a throw-away profile and no network services.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "install it with `apt-get update && apt-get install -y chromium`"

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)

# Appended to a copy of the page: after load, record the layout in a <pre> that
# --dump-dom returns. Elements are reported by tag, class and the start of their text.
_PROBE = """
<script>
window.addEventListener('load', () => {
  const vw = document.documentElement.clientWidth;
  const describe = e => (e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
    + ' "' + (e.textContent || '').trim().slice(0, 60) + '"');
  const all = [...document.body.querySelectorAll('*')];
  const wide = all.filter(e => e.getBoundingClientRect().right > vw + 1);
  const outer = wide.filter(e => !wide.includes(e.parentElement) || e.tagName === 'TABLE');
  const imgs = [...document.images];
  const result = {
    viewport_width: vw,
    scroll_width: document.documentElement.scrollWidth,
    overflowing: outer.slice(0, 20).map(describe),
    n_images: imgs.length,
    broken_images: imgs.filter(i => !(i.complete && i.naturalWidth > 0))
      .map(i => (i.getAttribute('src') || '').slice(0, 80)),
    n_tables: document.querySelectorAll('table').length,
  };
  const pre = document.createElement('pre');
  pre.id = 'skinml-layout';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
"""


@dataclass(frozen=True)
class Layout:
    """What Chromium measured for one page at one window width."""

    viewport_width: int
    scroll_width: int
    overflowing: list[str] = field(default_factory=list)
    n_images: int = 0
    broken_images: list[str] = field(default_factory=list)
    n_tables: int = 0

    @property
    def fits(self) -> bool:
        """Nothing runs past the right edge (no horizontal scrolling)."""
        return self.scroll_width <= self.viewport_width and not self.overflowing


def find_chromium() -> str | None:
    """The first Chromium binary found, or None."""
    for name in CHROMIUM_CANDIDATES:
        if name.startswith("/"):
            if Path(name).is_file():
                return name
        elif path := shutil.which(name):
            return path
    return None


def _run(args: list[str], *, timeout: float, chromium: str | None) -> subprocess.CompletedProcess:
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError(f"chromium not found; {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="skinml_chromium_") as profile:
        cmd = [chromium, *_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(
    html: Path,
    png: Path,
    *,
    width: int = 1200,
    height: int = 2400,
    timeout: float = 120.0,
    chromium: str | None = None,
) -> Path:
    """Screenshot ``html`` into ``png``.

    Raises:
        FileNotFoundError: Chromium is not installed.
        RuntimeError: Chromium failed or wrote no image.
    """
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    args = [f"--screenshot={png}", f"--window-size={width},{height}", Path(html).resolve().as_uri()]
    proc = _run(args, timeout=timeout, chromium=chromium)
    if proc.returncode != 0 or not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return png


def measure_layout(
    html: Path, *, width: int = 1000, timeout: float = 120.0, chromium: str | None = None
) -> Layout:
    """Open ``html`` at ``width`` px and measure overflow and image loading.

    The page is copied next to itself (so relative links and images still resolve)
    with a small measuring script appended; the original is not changed.

    Raises:
        FileNotFoundError: Chromium is not installed.
        RuntimeError: Chromium failed or the page never finished loading.
    """
    html = Path(html).resolve()
    probe = html.with_name(f".{html.stem}.layout-probe.html")
    text = html.read_text(encoding="utf-8")
    cut = text.lower().rfind("</body>")
    probe.write_text(
        (text[:cut] + _PROBE + text[cut:]) if cut >= 0 else text + _PROBE, encoding="utf-8"
    )
    try:
        args = [
            f"--window-size={width},900",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ]
        proc = _run(args, timeout=timeout, chromium=chromium)
    finally:
        probe.unlink(missing_ok=True)
    found = re.search(r'<pre id="skinml-layout">(.*?)</pre>', proc.stdout, re.S)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(
            f"chromium did not report a layout for {html.name} (exit {proc.returncode}): "
            f"{proc.stderr[-2000:]}"
        )
    return Layout(**json.loads(html_lib.unescape(found.group(1))))
