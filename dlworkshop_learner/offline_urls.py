"""Serve registry URLs from the verified local copies, before any network attempt.

The upstream lesson reads data straight from URLs (`pd.read_csv(ZENODO_URL)`, seaborn's and
Keras' downloaders). On a workshop's failing wifi those calls hang rather than fail, so the learner
image installs this opener in every Python process (a .pth file calls `install()`): a URL listed in
`<data root>/urls.json` (written by `dlworkshop data fetch`) is answered from its verified copy; every
other URL goes to the network as usual. Set DLWORKSHOP_OFFLINE_URLS=0 to switch it off.
Import-light: urllib is configured only when a process imports urllib.request itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from dlworkshop_learner import layout
from dlworkshop_learner.import_hooks import when_imported


def _url_map(root: Path) -> dict[str, Path]:
    try:
        entries = json.loads((root / layout.URL_MAP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    mapping = {}
    for url, relative in entries.items():
        mapping[url] = root / relative
        mapping[url.split("?", 1)[0]] = root / relative  # the same file asked for without ?download=1
    return mapping


def _configure_urllib(request: ModuleType, mapping: dict[str, Path]) -> None:
    import email.utils
    import urllib.response

    class VerifiedCopyHandler(request.BaseHandler):  # type: ignore[name-defined]  # a module passed in
        handler_order = 100  # before the HTTP(S) handlers, so no connection is ever attempted

        def _serve(self, req: Any) -> Any:
            url = req.full_url
            path = mapping.get(url) or mapping.get(url.split("?", 1)[0])
            if path is None or not path.is_file():
                return None
            size = path.stat().st_size
            headers = email.message_from_string(
                f"Content-Length: {size}\nContent-Type: application/octet-stream\n"
                f"Last-Modified: {email.utils.formatdate(path.stat().st_mtime, usegmt=True)}\n"
            )
            response = urllib.response.addinfourl(path.open("rb"), headers, url, code=200)
            response.msg = "OK"  # type: ignore[attr-defined]  # read by urllib's HTTPErrorProcessor
            return response

        http_open = _serve
        https_open = _serve

    request.install_opener(request.build_opener(VerifiedCopyHandler()))


def install(root: Path | None = None) -> bool:
    """Arrange for urllib to answer registry URLs from local copies. Returns whether it is active."""
    if os.environ.get(layout.OFFLINE_URLS_ENV, "1") == "0":
        return False
    mapping = _url_map(root or layout.data_root())
    if not mapping:
        return False
    when_imported("urllib.request", lambda module: _configure_urllib(module, mapping))
    return True
