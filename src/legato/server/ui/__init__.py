"""The web UI: server-rendered pages (Jinja2) over the same client as the API.

No build step and nothing fetched from the internet: templates, one stylesheet
and one small script ship inside the package; graphs, timelines and charts
are SVG rendered here.
"""

from __future__ import annotations

from legato.server.ui.app import install_ui

__all__ = ["install_ui"]
