"""/docs without the internet: Swagger UI's files served from the swagger-ui-bundle-v2
package (FastAPI's own page loads them from a CDN, a blank page offline)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

log = logging.getLogger(__name__)


def offline_docs(app: FastAPI) -> None:
    """Add /docs to `app`, with Swagger UI's files at /docs/static."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # an install from before the dependency: the CDN's, as FastAPI does
        log.warning("/docs loads Swagger UI from the internet: pip install 'phashdb[serve]'")
        files = {}
    else:
        app.mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
        files = {"swagger_js_url": "/docs/static/swagger-ui-bundle.js",
                 "swagger_css_url": "/docs/static/swagger-ui.css", "swagger_favicon_url": "data:,"}  # fmt: skip

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="phashdb API", **files)
