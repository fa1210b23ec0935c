"""The OpenAPI description, ``/openapi.json``, and its page, ``/docs`` (Swagger UI), served from here.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, at a floating major version and without
integrity checks: a third-party script running in the API's own origin, and pages that do not work
offline. The ``fastapi-offline`` package (a dependency of the ``serve`` extra, MIT, which needs only
FastAPI) ships Swagger UI's files; ``/docs`` is served from them, so the page runs only what pip
installed and asks nothing of any other host. ``/redoc`` is not served: ReDoc's page fetches its logo
from its vendor's site, and Swagger UI shows the same description and can also send requests. Both
routes take the same token as the reads.
"""

from __future__ import annotations

from pathlib import Path

from dualsearch.errors import require

OPENAPI_URL = "/openapi.json"
ASSETS_URL = "/docs/assets"


def assets_dir() -> Path:
    """The folder of Swagger UI's script, style sheet and icon, as ``fastapi-offline`` ships them."""
    package = require("fastapi_offline", "serve", "the API docs pages")
    return Path(package.__file__).parent / "static"


def add_docs_routes(app, dependencies: list) -> None:
    """``/openapi.json`` and ``/docs`` on ``app``, each with ``dependencies`` (the reads' token check, when
    reads need one), and the page's files under :data:`ASSETS_URL`."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.staticfiles import StaticFiles

    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    title = f"{app.title} {app.version}"

    @app.get(OPENAPI_URL, include_in_schema=False, dependencies=dependencies)
    async def openapi_description() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=dependencies)
    async def swagger_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=None,
            # Swagger UI would send the description's URL to validator.swagger.io for a badge
            swagger_ui_parameters={"validatorUrl": None},
        )
