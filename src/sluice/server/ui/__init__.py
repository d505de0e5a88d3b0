"""The web UI: server-rendered page shells plus small hand-written JS and CSS.

The HTML and static routes hold no data (so they need no API key); every
page's script polls the JSON API (``/api/ui`` and ``/api/flow_runs``) with
the key the browser holds. :func:`mount_ui` adds the pages to the app.
"""

from __future__ import annotations

from sluice.server.ui.routes import mount_ui

__all__ = ["mount_ui"]
