"""Render an HTML report in headless Chromium: a PNG screenshot and a layout check.

Why: a report is only good if it reads well in a real browser, so the tests and
the developers check it the way a resident or clinician will see it.

Usage::

    python scripts/screenshot_report.py REPORT.html -o out.png [--width 1200 --height 2400]
    python scripts/screenshot_report.py REPORT.html --check-width 1000   # exit 1 on overflow

Needs ``/usr/bin/chromium`` (Debian: ``apt-get update && apt-get install -y chromium``).
The browser runs offline, sandbox-free (containers), with a throw-away profile
(see :mod:`skinml.reporting.browser`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skinml.reporting.browser import find_chromium, measure_layout, screenshot

__all__ = ["find_chromium", "main", "measure_layout", "screenshot"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python scripts/screenshot_report.py "
        "reports/report_alice.html -o alice.png --height 4000\n"
        "  python scripts/screenshot_report.py outputs/RUN/index.html --check-width 1000",
    )
    parser.add_argument("html", type=Path, help="the HTML report")
    parser.add_argument("-o", "--output", type=Path, default=Path("report.png"))
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument(
        "--check-width",
        type=int,
        metavar="PX",
        help="instead of a screenshot, open the page PX wide and fail (exit 1) when anything "
        "runs past the right edge or an image does not load",
    )
    args = parser.parse_args(argv)
    try:
        if args.check_width:
            layout = measure_layout(args.html, width=args.check_width)
            print(
                f"{args.html}: page {layout.scroll_width} px wide in a {layout.viewport_width} px "
                f"window; {layout.n_tables} tables, {layout.n_images} images "
                f"({len(layout.broken_images)} not loaded)"
            )
            for what in layout.overflowing:
                print(f"  runs past the right edge: {what}")
            for src in layout.broken_images:
                print(f"  image not loaded: {src}")
            return 0 if layout.fits and not layout.broken_images else 1
        out = screenshot(args.html, args.output, width=args.width, height=args.height)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"screenshot written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
