"""The Intellimeter cloud API as an ASGI app, driven by the shared household physics.

See :mod:`.protocol` for how requests are read and answers rendered, :mod:`.routes` for the
vendor's routes and :mod:`.site` for the simulated project behind them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterhub.errors import MeterhubError
from meterhub.vendors.simkit import SimKit

from .protocol import SESSION_COOKIE, Call, Handler, error_status, read_params, respond, wants_xml
from .routes import ROUTES
from .site import VARIANTS, IntellimeterConfig, IntellimeterSite

__all__ = ["IntellimeterConfig", "create_app"]


def _endpoint(
    site: IntellimeterSite, kit: SimKit, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    async def answer(request: Request) -> Response:
        site.apply_variants(kit.variant)
        account = site.book.session_account(request.cookies.get(SESSION_COOKIE))
        xml = wants_xml(request, request.query_params, account)
        try:
            params = await read_params(request)
            xml = wants_xml(request, params, account)
            return await handler(Call(request, site, params, account, xml))
        except MeterhubError as error:
            return respond({"error": str(error)}, xml=xml, status_code=error_status(error))

    return answer


def create_app(seed: int = 1, speed: float = 1.0, **options: Any) -> Starlette:
    """Return the Intellimeter API; ``options`` are :class:`IntellimeterConfig` fields.

    Real-world variants (:data:`~.site.VARIANTS`) switch on through ``POST /_sim/variants``;
    they take effect at the next vendor call.
    """
    site = IntellimeterSite(IntellimeterConfig(**options), seed, speed)
    kit = SimKit("intellimeter", site.clock, info=lambda: _info(site, kit), variants=VARIANTS)
    routes = [
        Route(path, _endpoint(site, kit, handler), methods=[method]) for path, method, handler in ROUTES
    ]
    app = kit.app(routes)
    app.state.site = site
    return app


def _info(site: IntellimeterSite, kit: SimKit) -> dict[str, Any]:
    site.apply_variants(kit.variant)
    config = site.config
    return {
        "login": {"username": config.username, "password": config.password},
        "meters": [point.name for point in site.points.values()],
        "point_ids": {point.name: point.id for point in site.points.values()},
        "tz": config.tz,
    }
