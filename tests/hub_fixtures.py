"""A local server laid out and answering as the Hugging Face hub does (file listing API with LFS sha256
and sizes, ``resolve/<revision>/<path>`` URLs), for download tests without the network."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest


class _Hub(SimpleHTTPRequestHandler):
    """Serves <root>/<org>/<repo>/<path> as the hub does; `lie` maps a path to a wrong sha256 to list;
    `delay` seconds pass before each file is served (a slow network, for cancel tests)."""

    lie: dict[str, str] = {}
    delay: float = 0.0

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = unquote(urlparse(self.path).path)
        root = Path(self.directory)
        if path.startswith("/api/models/") and "/tree/" in path:
            repo = root / path[len("/api/models/"):].split("/tree/")[0]
            if not repo.is_dir():
                return self.send_error(404, "Repository not found")
            entries = []
            for f in sorted(p for p in repo.rglob("*") if p.is_file()):
                rel = f.relative_to(repo).as_posix()
                entry = {"type": "file", "path": rel, "size": f.stat().st_size}
                if f.suffix == ".onnx":  # LFS files carry their sha256 in the listing
                    entry["lfs"] = {"oid": self.lie.get(rel) or hashlib.sha256(f.read_bytes()).hexdigest(),
                                    "size": f.stat().st_size}
                entries.append(entry)
            body = json.dumps(entries).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if "/resolve/" in path:
            time.sleep(self.delay)
            repo, _, rest = path.lstrip("/").partition("/resolve/")
            self.path = f"/{repo}/{rest.split('/', 1)[1]}"
        return super().do_GET()


@pytest.fixture
def hub(tmp_path):
    """(root folder of the hub's repositories, base URL)."""
    root = tmp_path / "hub"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Hub, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hub.lie, _Hub.delay = {}, 0.0
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()
