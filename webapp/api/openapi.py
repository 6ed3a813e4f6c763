"""The OpenAPI 3.1 document, built from the routes and the very pydantic models they validate with.

Each view is declared with `operation(...)`: its path, method, body and query models
and its answers. The same declaration registers the Flask route and describes it
here, so the document cannot drift from what the code does.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from webapp.api.schemas import ErrorOut
from webapp.routing import MAX_ID

REF_TEMPLATE = "#/components/schemas/{model}"
ID = "id"  # webapp.routing.IdConverter: <id:event_id>
_RULE_PARAM = re.compile(r"<(?:[^:<>]+:)?(\w+)>")


@dataclass
class Operation:
    rule: str
    method: str
    endpoint: str
    summary: str
    description: str
    ok: int
    ok_model: type[BaseModel] | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    auth: bool
    errors: dict[int, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # optional request headers


OPERATIONS: list[Operation] = []


def operation(bp: Blueprint, rule: str, method: str, *, summary: str, ok: int,
              ok_model: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, auth: bool = True,
              errors: dict[int, str] | None = None,
              headers: dict[str, str] | None = None) -> Callable:
    """Register a view on `bp` and describe it for the OpenAPI document.

    `errors` maps each status the view itself can answer to what it means (with
    its error codes); the statuses every operation of its kind can answer (400 for
    a body, 401 when signed in, 404 for an id in the path, 500) are added here.
    """

    def decorate(view: Callable) -> Callable:
        bp.add_url_rule(rule, endpoint=view.__name__, view_func=view, methods=[method])
        doc = inspect.cleandoc(view.__doc__ or "")
        OPERATIONS.append(Operation(
            rule=rule, method=method.lower(), endpoint=view.__name__, summary=summary,
            description=doc, ok=ok, ok_model=ok_model, body=body, query=query, auth=auth,
            errors=dict(errors or {}), headers=dict(headers or {}),
        ))
        return view

    return decorate


def _path(prefix: str, rule: str) -> str:
    return prefix + _RULE_PARAM.sub(r"{\1}", rule)


def _standard_errors(op: Operation) -> dict[int, str]:
    errors: dict[int, str] = {}
    unsafe = op.method in ("post", "put", "patch", "delete")
    bad = []
    if op.body is not None:
        bad.append("`invalid` (a field is wrong: see `fields`), `invalid_json`")
    if op.query is not None:
        bad.append("`invalid` / `invalid_status` (a query parameter is wrong)")
    if unsafe:
        bad.append("`csrf_failed` (a request with a session cookie needs X-CSRFToken)")
    if bad:
        errors[400] = "; ".join(bad) + "."
    if op.auth:
        errors[401] = ("`unauthorized` (no credentials), `invalid_token` (forged or revoked), "
                       "`token_expired`.")
    if "<" in op.rule:
        errors[404] = "`not_found`: no such resource (or an id out of range)."
    if op.body is not None:
        errors[413] = "`too_large`: the body is over the size limit."
        errors[415] = "`unsupported_media_type`: send Content-Type: application/json."
    errors[500] = "`internal_error`: something unexpected failed; quote the request_id."
    errors[503] = ("`busy`: the database could not answer in time; try again after the "
                   "Retry-After header's seconds.")
    for status, text in op.errors.items():
        errors[status] = f"{errors[status]} Also: {text}" if status in errors else text
    return dict(sorted(errors.items()))


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query string cannot say null: an optional parameter is simply left out."""
    options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    if len(options) != 1:
        return schema
    return {**options[0], **{k: v for k, v in schema.items()
                             if k not in ("anyOf", "default", "title")}}


def _parameters(op: Operation, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params = [{"name": name, "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}
              for name in _RULE_PARAM.findall(op.rule)]
    if op.query is not None:
        query_schema = op.query.model_json_schema(ref_template=REF_TEMPLATE)
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required,
                           "description": prop.get("description", ""),
                           "schema": _without_null(prop)})
    for name, description in op.headers.items():
        params.append({"name": name, "in": "header", "required": False,
                       "description": description,
                       "schema": {"type": "string", "minLength": 1, "maxLength": 255}})
    return params


def build_document(prefix: str = "/api", version: str = "0.1.0") -> dict[str, Any]:
    """The whole document; cheap enough to build per request, cached by the view."""
    inputs = {m for op in OPERATIONS for m in (op.body,) if m is not None}
    outputs = {op.ok_model for op in OPERATIONS if op.ok_model is not None} | {ErrorOut}
    pairs = ([(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)]
             + [(m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)])
    refs, defs = models_json_schema(pairs, ref_template=REF_TEMPLATE)
    schemas = defs.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {}
        ok: dict[str, Any] = {"description": op.summary}
        if op.ok_model is not None:
            ok["content"] = {"application/json": {
                "schema": refs[(op.ok_model, "serialization")]}}
        responses[str(op.ok)] = ok
        for status, text in _standard_errors(op).items():
            response: dict[str, Any] = {"description": text, "content": {
                "application/json": {"schema": refs[(ErrorOut, "serialization")]}}}
            if status == 401:
                response["headers"] = {"WWW-Authenticate": {
                    "description": "Bearer, with error=invalid_token when a token was refused.",
                    "schema": {"type": "string"}}}
            responses[str(status)] = response
        spec: dict[str, Any] = {
            "operationId": op.endpoint,
            "summary": op.summary,
            "description": op.description,
            "security": [{"bearerAuth": []}] if op.auth else [],
            "responses": responses,
        }
        params = _parameters(op, schemas)
        if params:
            spec["parameters"] = params
        if op.body is not None:
            spec["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": refs[(op.body, "validation")]}}}
        paths.setdefault(_path(prefix, op.rule), {})[op.method] = spec

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Turnout API",
            "version": version,
            "description": (
                "Event registration that never oversells. Sign in with POST /api/auth/login "
                "and send `Authorization: Bearer <token>`. Errors are "
                '`{"error": {"code", "message", "request_id"}}`. Date-times are ISO 8601 '
                "with an offset; a value without one is refused."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A token from POST /api/auth/login; it expires after "
                               "API_TOKEN_MAX_AGE seconds and on sign-out everywhere."}},
        },
    }
