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
