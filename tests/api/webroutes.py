"""The dashboard's pages and static folders: not API routes, so they answer a browser differently."""

from __future__ import annotations

__all__ = ["MOUNTS", "PAGES", "SIGN_IN"]

SIGN_IN = "sign-in"
PAGES: dict[tuple[str, str], int | str] = {
    # Pages redirect a browser without a session to /login?next=<the page> (303), so a browser
    # signs in and comes back; they hold no data before that. API keys do not open them.
    ("GET", "/"): SIGN_IN,
    ("GET", "/meters/{meter_id}"): SIGN_IN,
    ("GET", "/health"): SIGN_IN,
    ("GET", "/docs"): SIGN_IN,
    ("GET", "/places"): SIGN_IN,
    ("GET", "/places/{place_id}"): SIGN_IN,
    ("GET", "/places/{place_id}/capacity"): SIGN_IN,
    ("GET", "/prices"): SIGN_IN,
    # Managing the hub: admins only (anyone else gets the 404 page); a browser without a
    # session is sent to sign in, whether it asks for a page or posts a form.
    **{
        (method, f"/manage{path}"): SIGN_IN
        for method, path in (
            ("GET", ""),
            ("POST", "/settings"),
            ("GET", "/meters"),
            ("GET", "/meters/new"),
            ("POST", "/meters/new"),
            ("POST", "/meters/discover"),
            ("POST", "/meters/discover/add"),
            ("GET", "/meters/{meter_id}/edit"),
            ("POST", "/meters/{meter_id}/edit"),
            ("GET", "/meters/{meter_id}/remove"),
            ("POST", "/meters/{meter_id}/remove"),
            ("GET", "/backfill"),
            ("POST", "/backfill"),
            ("GET", "/places"),
            ("POST", "/places"),
            ("GET", "/places/{place_id}"),
            ("POST", "/places/{place_id}"),
            ("POST", "/places/{place_id}/meters"),
            ("POST", "/places/{place_id}/meters/{meter_id}/detach"),
            ("POST", "/places/{place_id}/tariff"),
            ("GET", "/places/{place_id}/remove"),
            ("POST", "/places/{place_id}/remove"),
            ("GET", "/users"),
            ("POST", "/users"),
            ("GET", "/users/{name}"),
            ("POST", "/users/{name}/role"),
            ("POST", "/users/{name}/password"),
            ("POST", "/users/{name}/shares"),
            ("POST", "/users/{name}/shares/{kind}/{object_id}/unshare"),
            ("GET", "/users/{name}/remove"),
            ("POST", "/users/{name}/remove"),
            ("GET", "/keys"),
            ("POST", "/keys"),
            ("POST", "/keys/{key_id}/revoke"),
        )
    },
    # the sign-in form itself; posting it without the form's token shows it again
    ("GET", "/login"): 200,
    ("POST", "/login"): 400,
    # signing out without a session just goes to the sign-in page
    ("POST", "/logout"): 303,
    # a third-party script from an installed package: public, it holds no data
    ("GET", "/static/vendor/plotly.min.js"): 200,
}
"""The dashboard's pages and assets (not API routes) with what a browser without a session gets."""
MOUNTS = {"/static": "/static/app.css", "/docs/assets": "/docs/assets/swagger-ui.css"}
"""Static folders (our scripts and styles, Swagger UI's), public like the sign-in page needs them."""
