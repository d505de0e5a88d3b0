"""The API's operations: one FastAPI route per entry of :data:`sluice.operations.routes.ROUTES`.

Each route's endpoint is made from its entry: path placeholders, query
parameters (typed and bounded as the entry says) and a JSON body (the request
type's other fields, or the one field that is the whole body) become the
request; values the store cannot hold (NUL characters, integers past 64
bits, naive datetimes ...) are refused with a 422 first; then the server's
store runs it (:meth:`sluice.backend.local.LocalBackend.execute`) and the
answer is rendered (wrapped as the entry says, 204 for none). Refusals are
the app's error handlers' (:mod:`sluice.server.errors`): a status code, the
``detail`` and the error's type and fields. The OpenAPI document shows every
request and response schema, like hand-written routes.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import AwareDatetime, ConfigDict

from sluice.errors import InvalidInputError
from sluice.operations.base import request_fields, result_type
from sluice.operations.routes import ROUTES, Bounds, Placement, Route, placement
from sluice.server.api.refusals import holds_nul
from sluice.server.json_bodies import StrictJSONRoute
from sluice.server.validation import check_storable

_EMPTY = inspect.Parameter.empty
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def add_operation_routes(router: APIRouter, prefix: str) -> None:
    """Build the route of every operation on ``router`` (the app's), under ``prefix``."""
    for route in ROUTES:
        doc = inspect.cleandoc(route.op.__doc__ or "")
        router.add_api_route(
            prefix + route.path,
            endpoint_of(route),
            methods=[route.method],
            status_code=route.status,
            response_model=None if route.status == 204 else route.answer or result_type(route.op),
            tags=[route.tag],
            summary=doc.split("\n\n", 1)[0].replace("\n", " "),
            description=doc,
            name=_snake(route.op.__name__),
            route_class_override=StrictJSONRoute,
        )


def endpoint_of(route: Route) -> Callable[..., Any]:
    """The endpoint function of ``route``, its signature declaring what FastAPI parses."""
    shape = placement(route)
    hints = typing.get_type_hints(route.op, include_extras=True)
    defaults = {f.name: _default(f) for f in request_fields(route.op)}
    parameters = [inspect.Parameter("request", _KEYWORD, annotation=Request)]
    parameters += [inspect.Parameter(name, _KEYWORD, annotation=str) for name in _path_names(shape)]
    parameters += _query_parameters(route, shape, hints, defaults)
    body = _body_parameter(route, shape, hints, defaults)
    if body is not None:
        parameters.append(body)

    def endpoint(request: Request, **values: Any) -> Any:
        op = route.op(**_arguments(route, shape, values))
        answer = request.app.state.backend.execute(op)
        if route.status == 204:
            return Response(status_code=204)
        if route.answer is not None:
            return route.answer(answer)
        return answer

    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = _snake(route.op.__name__)
    return endpoint


def _arguments(route: Route, shape: Placement, values: Mapping[str, Any]) -> dict[str, Any]:
    """The request's fields from the parsed path, query and body, screened for values
    the store cannot hold (a 422 naming them)."""
    path = {name: values[name] for name in _path_names(shape)}
    _refuse_nul_in(path, "the path")
    arguments: dict[str, Any] = {}
    for placeholder, field in shape.path:
        if "." not in field:
            arguments[field] = path[placeholder]
    if shape.split is not None:
        field, key = shape.split
        arguments[field] = key.join(path[key.first], path[key.second])
    query = {field: values[f"q_{field}"] for field, _ in shape.query}
    _refuse_nul_in(query, "the query")
    check_storable(list(query.values()), ("query",))
    arguments.update(query)
    body = values.get("body")
    if shape.body is not None:
        arguments[shape.body] = body
    elif body is not None:
        arguments.update({field: getattr(body, name) for field, name in shape.body_fields})
    if body is not None:
        _refuse_nul_in(body)
        check_storable(body, shaped_as=route.patch_of if isinstance(body, dict) else None)
    _check_path_matches_body(shape, path, arguments)
    return arguments


def _refuse_nul_in(values: Any, where: str = "") -> None:
    """Refuse (InvalidInputError, a 422) the first field of ``values`` (a body, the
    path's or the query's values) holding a NUL character, which PostgreSQL text
    cannot hold: named, with ``where`` it was found."""
    if isinstance(values, dict):
        fields = values
    else:
        fields = {f.name: getattr(values, f.name) for f in dataclasses.fields(values)}
    for name, value in fields.items():
        if holds_nul(name) or holds_nul(value):
            found = f" ({where})" if where else ""
            raise InvalidInputError(f"{name}: holds a NUL character{found}", field=str(name))


def _check_path_matches_body(
    shape: Placement, path: Mapping[str, str], arguments: Mapping[str, Any]
) -> None:
    """422 when the path names an attribute of the body otherwise (a queue's pool)."""
    for placeholder, field in shape.path:
        if "." in field:
            head, attribute = field.split(".", 1)
            given = getattr(arguments[head], attribute)
            if given != path[placeholder]:
                raise InvalidInputError(
                    f"{attribute}: {given!r} is not the path's {placeholder} {path[placeholder]!r}",
                    field=attribute,
                )


def _query_parameters(
    route: Route, shape: Placement, hints: Mapping[str, Any], defaults: Mapping[str, Any]
) -> list[inspect.Parameter]:
    """The query parameters, typed as their fields and bounded as the entry says."""
    parameters = []
    for field, name in shape.query:
        bounds = route.bounds.get(field)
        limits = {} if bounds is None else _limits(bounds)
        kind: Any = Annotated[_query_type(hints[field]), Query(alias=name, **limits)]
        parameters.append(
            inspect.Parameter(f"q_{field}", _KEYWORD, annotation=kind, default=defaults[field])
        )
    return parameters


def _body_parameter(
    route: Route, shape: Placement, hints: Mapping[str, Any], defaults: Mapping[str, Any]
) -> inspect.Parameter | None:
    """The JSON body parameter (optional when every field it holds has a default)."""
    body_type = _body_type(route, shape, hints, defaults)
    if body_type is None:
        return None
    fields = [field for field, _ in shape.body_fields]
    optional = shape.body is None and all(defaults[f] is not _EMPTY for f in fields)
    kind: Any = Annotated[body_type | None if optional else body_type, Body()]
    default = None if optional else _EMPTY
    return inspect.Parameter("body", _KEYWORD, annotation=kind, default=default)


def _path_names(shape: Placement) -> list[str]:
    names = [placeholder for placeholder, _ in shape.path]
    if shape.split is not None:
        names += [shape.split[1].first, shape.split[1].second]
    return list(dict.fromkeys(names))


def _body_type(
    route: Route, shape: Placement, hints: Mapping[str, Any], defaults: Mapping[str, Any]
) -> Any:
    """The type FastAPI validates the body as (None: the route reads no body)."""
    if shape.body is not None:
        return hints[shape.body]
    if not shape.body_fields:
        return None
    fields = []
    for field, name in shape.body_fields:
        default = defaults[field]
        spec = dataclasses.field() if default is _EMPTY else _field_default(route, field)
        fields.append((name, hints[field], spec))
    # Unknown keys are refused: a misspelt field must not be silently ignored.
    namespace = {"__pydantic_config__": ConfigDict(extra="forbid"), "__doc__": route.op.__doc__}
    return dataclasses.make_dataclass(f"{route.op.__name__}Request", fields, namespace=namespace)


def _field_default(route: Route, name: str) -> Any:
    field = next(f for f in request_fields(route.op) if f.name == name)
    if field.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=field.default_factory)
    return dataclasses.field(default=field.default)


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return _EMPTY


def _query_type(annotation: Any) -> Any:
    """A query parameter's type: datetimes must carry their zone."""
    if annotation is _dt.datetime:
        return AwareDatetime
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = tuple(_query_type(a) for a in typing.get_args(annotation))
        return typing.Union[args]  # noqa: UP007
    return annotation


def _limits(bounds: Bounds) -> dict[str, Any]:
    limits = {"ge": bounds.ge, "le": bounds.le, "min_length": bounds.min_length}
    return {name: value for name, value in limits.items() if value is not None}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
