"""phashdb as a service: an HTTP API for uploads and a review page (needs phashdb[serve]).

from phashdb.serve import Running, ServeConfig
with Running(ServeConfig(db="hbase://host:9090/images", uploads=Path("uploads"))) as server:
    print(server.url)
"""

from __future__ import annotations

from .app import ServeConfig, create_app
from .server import Running, serve

__all__ = ["Running", "ServeConfig", "create_app", "serve"]
