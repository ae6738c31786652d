"""The web console: a static page at `/` and its files under `/console/`.

Plain HTML, CSS and JavaScript modules shipped in the package (`api_lambda/console/`), so there is
no build step and the Lambda serves it too. The page holds no data: it needs no key to load, and
every call it makes to the API carries the key the user types (kept in the browser's session
storage).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"

# The page runs only its own scripts; data calls may go to the API and to the presigned S3 URL
# it is given (another origin), audio plays from the local file.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self' http: https:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    """StaticFiles with the page's security headers on every file."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount(app: FastAPI) -> None:
    """`GET /` (the page) and `/console/*` (its scripts and styles), outside the OpenAPI schema."""

    @app.get("/", include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(CONSOLE_DIR / "index.html", media_type="text/html", headers=SECURITY_HEADERS)

    app.mount("/console", ConsoleFiles(directory=CONSOLE_DIR), name="console")
