"""Render an HTML report in headless Chromium and save a PNG screenshot.

Why: a report is only good if it reads well in a real browser, so the teach
tests and the developers check it the way a resident will see it.

Usage::

    python scripts/screenshot_report.py REPORT.html -o out.png [--width 1200 --height 2400]

Needs ``/usr/bin/chromium`` (Debian: ``apt-get update && apt-get install -y chromium``).
The browser runs offline, sandbox-free (containers), with a throw-away profile:

    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync \
      --user-data-dir=$(mktemp -d) --screenshot=out.png --window-size=1200,2400 file://...
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The first Chromium binary found, or None."""
    for name in CHROMIUM_CANDIDATES:
        path = (
            shutil.which(name)
            if not name.startswith("/")
            else (name if Path(name).is_file() else None)
        )
        if path:
            return path
    return None


def screenshot(
    html: Path,
    png: Path,
    *,
    width: int = 1200,
    height: int = 2400,
    timeout: float = 120.0,
    chromium: str | None = None,
) -> Path:
    """Screenshot ``html`` into ``png`` with headless Chromium.

    Raises:
        FileNotFoundError: Chromium is not installed.
        RuntimeError: Chromium failed or wrote no image.
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError(
            "chromium not found; install it with `apt-get update && apt-get install -y chromium`"
        )
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="skinml_chromium_") as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            html.resolve().as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0 or not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python scripts/screenshot_report.py "
        "reports/report_alice.html -o alice.png --height 4000",
    )
    parser.add_argument("html", type=Path, help="the HTML report")
    parser.add_argument("-o", "--output", type=Path, default=Path("report.png"))
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    try:
        out = screenshot(args.html, args.output, width=args.width, height=args.height)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"screenshot written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
