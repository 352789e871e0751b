"""A form generated from a queue's JSON schema: one input per top-level property, with the
schema's bounds as HTML constraints, so the browser validates before sending and the server (the
same `QueueService.add_raw` as the API) validates again and names each field that is wrong.

Scalars get typed inputs; objects, arrays and unions of several shapes get a JSON text area
(checked by the page script before sending). An empty optional input is left out, so the queue's
catalog defaults apply as they do for an API call without that field."""

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

Kind = Literal["text", "email", "integer", "number", "checkbox", "select", "json"]


@dataclass(frozen=True, slots=True)
class FormField:
    group: str
    """`data` or `options`: the part of the enqueue request the field belongs to."""
    name: str
    label: str
    kind: Kind
    required: bool
    description: str = ""
    choices: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    """HTML constraint attributes: minlength, maxlength, min, max, step, pattern."""
    placeholder: str = ""

    @property
    def input_name(self) -> str:
        return f"{self.group}.{self.name}"


def _without_null(prop: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """`X | None` is `anyOf: [X, null]`: the field is X, and may be left empty."""
    options = prop.get("anyOf")
    if options:
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            merged = {k: v for k, v in prop.items() if k != "anyOf"} | rest[0]
            return merged, len(rest) < len(options)
    return prop, False


def _constraints(prop: dict[str, Any]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for schema_key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
        if schema_key in prop:
            attrs[attr] = str(prop[schema_key])
    if "minimum" in prop:
        attrs["min"] = str(prop["minimum"])
    if "maximum" in prop:
        attrs["max"] = str(prop["maximum"])
    if "exclusiveMaximum" in prop and prop.get("type") == "integer":
        attrs["max"] = str(prop["exclusiveMaximum"] - 1)
    if "pattern" in prop:
        attrs["pattern"] = prop["pattern"].removeprefix("^").removesuffix("$")
    return attrs


def _kind(prop: dict[str, Any]) -> Kind:
    if "enum" in prop:
        return "select"
    match prop.get("type"):
        case "string":
            return "email" if prop.get("format") == "email" else "text"
        case "integer":
            return "integer"
        case "number":
            return "number"
        case "boolean":
            return "checkbox"
        case _:
            return "json"


def form_fields(
    model: type[BaseModel], group: str, *, all_optional: bool = False
) -> list[FormField]:
    schema = model.model_json_schema()
    required = set(schema.get("required", ())) if not all_optional else set()
    fields = []
    for name, raw in schema.get("properties", {}).items():
        prop, _nullable = _without_null(raw)
        kind = _kind(prop)
        default = raw.get("default")
        fields.append(
            FormField(
                group=group,
                name=name,
                label=raw.get("title", name),
                kind=kind,
                required=name in required,
                description=raw.get("description", prop.get("description", "")),
                choices=[str(c) for c in prop.get("enum", ())],
                attrs=_constraints(prop) if kind != "json" else {},
                placeholder="" if default is None else json.dumps(default),
            )
        )
    return fields


class FormValueError(ValueError):
    def __init__(self, loc: list[str], message: str) -> None:
        super().__init__(message)
        self.error = {"loc": loc, "msg": message, "type": "form_value"}


def _parse(f: FormField, raw: str) -> Any:
    if f.kind == "integer":
        return int(raw)
    if f.kind == "number":
        return float(raw)
    if f.kind == "json":
        return json.loads(raw)
    return raw


def parse_form(fields: list[FormField], form: dict[str, str]) -> dict[str, Any]:
    """Submitted strings to the values of one group; a value that is not even of its input's
    type (bad JSON, a non-number) raises with the field's location, like a validation error."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.kind == "checkbox":
            if f.input_name in form or f.required:
                out[f.name] = f.input_name in form
            continue
        raw = form.get(f.input_name, "").strip()
        if not raw:
            continue
        try:
            out[f.name] = _parse(f, raw)
        except ValueError as exc:
            raise FormValueError([f.group, f.name], f"not valid {f.kind}: {exc}") from exc
    return out
