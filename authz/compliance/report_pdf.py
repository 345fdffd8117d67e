"""The access review as a printable record: the page printed to PDF by headless Chromium.

The page's print style puts the organization, the time it was generated and the policy digest
in every page's margin (CSS paged media), so each sheet filed away says what it is.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from authz.base.errors import ValidationFailed

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_SECONDS = 300


def chromium() -> str:
    """The headless browser that prints: Debian's `chromium` (apt-get install chromium)."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ValidationFailed([("pdf", "needs Chromium to print: apt-get install chromium")])


def print_pdf(html: str, target: Path) -> None:
    """Print the self-contained page `html` to the PDF file `target`."""
    if not target.parent.is_dir():
        raise ValidationFailed([("pdf", f"{target.parent}: No such directory")])
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="authz-pdf-") as tmp:
        page = Path(tmp) / "review.html"
        page.write_text(html, encoding="utf-8")
        done = subprocess.run(  # noqa: S603 - a fixed browser binary and our own file
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={Path(tmp) / 'profile'}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={target.resolve()}",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise ValidationFailed([("pdf", f"Chromium could not print the review: {tail[0]}")])
