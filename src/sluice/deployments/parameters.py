"""The JSON schema of a flow's parameters, stored with its deployment.

A server, a worker or a scheduler creating a run of a deployment has no flow
code to validate parameters with; it checks them against this schema
(:func:`sluice.parameter_schemas.check_parameters`) before a run exists.
pydantic builds the schema and is imported on first use.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from sluice.engine.parameters import _type_hints, signature_of

if TYPE_CHECKING:
    from sluice.flows import Flow


def parameter_schema_of(flow: Flow[..., Any]) -> dict[str, Any]:
    """The JSON schema of ``flow``'s parameters, from its signature.

    One property per parameter with its type (from the annotation; none
    for an unannotated one or a type JSON cannot describe) and its default
    when the default is JSON-serializable; parameters without defaults are
    required. A flow taking ``**kwargs`` accepts other names too.
    """
    import pydantic

    hints = _type_hints(flow.fn)
    fields: dict[str, Any] = {}
    open_ended = False
    for name, param in signature_of(flow.fn).parameters.items():
        if param.kind is param.VAR_KEYWORD:
            open_ended = True
            continue
        if param.kind is param.VAR_POSITIONAL:
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (hints.get(name, Any), default)
    config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    model = pydantic.create_model(f"{flow.name}_parameters", __config__=config, **fields)
    schema: dict[str, Any] = model.model_json_schema(schema_generator=_lenient_generator())
    schema["title"] = f"Parameters of {flow.name}"
    schema.setdefault("properties", {})
    if open_ended:
        schema["additionalProperties"] = True
    return schema


def _lenient_generator() -> Any:
    from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
    from pydantic_core import core_schema

    class Lenient(GenerateJsonSchema):
        """Types JSON cannot describe become ``{}`` (any value); unserializable
        defaults are left out, silently (the flow still applies them)."""

        def handle_invalid_for_json_schema(
            self, schema: core_schema.CoreSchema, error_info: str
        ) -> JsonSchemaValue:
            return {}

        def emit_warning(self, kind: Any, detail: str) -> None:
            return None

    return Lenient
