"""Render a report page in headless Chromium: its DOM after layout and a PNG screenshot.

Used by the tests (the page must show its plots in a real browser) and by
scripts/report_screenshot.py (docs/report_cnn.png). Needs a `chromium` (Debian's package) or
Google Chrome binary; nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional, Union

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> Optional[str]:
    """The Chromium/Chrome binary to use: $CHROMIUM if set, else the first of BROWSERS on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _flags(user_data_dir: str) -> List[str]:
    flags = [
        "--headless",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={user_data_dir}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to start its sandbox as root
    return flags


def _run(browser: str, args: List[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="nav-chromium-") as profile:
        result = subprocess.run([browser, *_flags(profile), *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{browser} exited with {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


def dump_dom(page: Union[str, Path], browser: Optional[str] = None, timeout: float = 60.0) -> str:
    """The page's DOM as Chromium serialises it after loading `page` (a local file)."""
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("no chromium binary found (apt-get install chromium)")
    return _run(browser, ["--dump-dom", Path(page).resolve().as_uri()], timeout).stdout


def screenshot(
    page: Union[str, Path],
    png: Union[str, Path],
    width: int = 1400,
    height: int = 2000,
    browser: Optional[str] = None,
    timeout: float = 60.0,
) -> Path:
    """Save a `width` x `height` screenshot of `page` (a local file) to `png`."""
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("no chromium binary found (apt-get install chromium)")
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    _run(browser, [f"--screenshot={png}", f"--window-size={width},{height}", Path(page).resolve().as_uri()], timeout)
    if not png.is_file():
        raise RuntimeError(f"{browser} did not write the screenshot {png}")
    return png
