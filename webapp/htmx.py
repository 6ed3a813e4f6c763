"""The one place that reads HX-* headers: full page or fragment, redirect or HX-Location."""

from __future__ import annotations

import json

from flask import (
    Response,
    after_this_request,
    g,
    get_flashed_messages,
    make_response,
    redirect,
    render_template,
    request,
)
from jinja2_fragments.flask import render_block


def is_htmx() -> bool:
    """An htmx request wanting a fragment (a history restore wants the whole page)."""
    _vary_on_hx_request()
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def _vary_on_hx_request() -> None:
    # Any answer chosen by reading HX-Request (redirects and HX-Location too) must say so.
    if not g.get("_varies_on_hx_request"):
        g._varies_on_hx_request = True
        after_this_request(_add_vary)


def _add_vary(response: Response) -> Response:
    response.vary.add("HX-Request")
    return response


def render(template: str, block: str | None = None, status: int = 200, **context) -> Response:
    """The named block for an htmx request, the full page otherwise; always Vary: HX-Request.

    Messages flashed for this page come with the block, out of band into #messages.
    """
    if block and is_htmx():
        body = render_block(template, block, **context)
        # The messages region is outside every block: a message flashed before an
        # HX-Location (or any other) would otherwise wait in the session for the next
        # full page. It comes with this fragment and htmx swaps it into #messages.
        if get_flashed_messages():
            body += render_template("_messages.html", oob=True)
    else:
        body = render_template(template, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def see_other(url: str, *, target: str = "#main") -> Response:
    """After a successful POST: 303 for a plain form, HX-Location for htmx.

    HX-Location makes htmx fetch the page, swap it into `target` and push the
    URL, so the browser moves on without a full page load.
    """
    if is_htmx():
        response = make_response("", 200)
        response.headers["HX-Location"] = json.dumps({"path": url, "target": target})
        return response
    return redirect(url, code=303)


def full_redirect(url: str) -> Response:
    """Leave the page entirely (e.g. to sign in): HX-Redirect for htmx, 303 otherwise."""
    if is_htmx():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


def render_error(status: int, message: str) -> Response:
    """An error as a page, or for htmx as a notice swapped into the page's message area.

    If the page itself cannot be rendered (the database behind current_user is
    down, say), a bare page still gives the message and the request id.
    """
    try:
        return _render_error(status, message)
    except Exception:
        from flask import g
        from markupsafe import escape

        reference = escape(g.get("request_id") or "")
        body = (f"<!doctype html><title>Error {status}</title><h1>Error {status}</h1>"
                f"<p>{escape(message)}</p><p>Reference: <code>{reference}</code></p>")
        response = make_response(body, status)
        response.vary.add("HX-Request")
        return response


def _render_error(status: int, message: str) -> Response:
    if is_htmx():
        response = make_response(
            render_template("errors/_notice.html", status=status, message=message), status
        )
        response.headers["HX-Retarget"] = "#messages"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        response = make_response(
            render_template("errors/error.html", status=status, message=message), status
        )
    response.vary.add("HX-Request")
    return response
