"""The dashboard page (``page.html`` beside this module): server-sent HTML with a small
script that polls the JSON API.

No build step and no external assets. Everything from the API is put into the page with
``textContent`` (never as HTML), so an error message or revision text cannot inject
markup.
"""

from __future__ import annotations

from importlib import resources

PAGE = resources.files("umbau.dashboard").joinpath("page.html").read_text(encoding="utf-8")
