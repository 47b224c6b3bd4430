"""The web page ``argus serve`` answers at ``/``: plain files (HTML, CSS, ES modules) shipped in
the package under ``static/``, with no build step; :mod:`argus.http.page` serves them. The page
only calls the public REST API, with the token the user typed."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
"""The page's files: ``index.html`` is served at ``/``, everything at ``/ui/<path>``."""

#: What the page's own files may weigh in all (HTML + CSS + JS, uncompressed).
BUDGET_BYTES = 200 * 1024
