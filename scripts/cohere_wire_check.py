"""Wire compatibility with Cohere's chat API (POST /v2/chat, operation `chatv2`).

    cohere_wire_check.py REQUESTS_JSON STANDIN_BASE_URL STANDIN_API_KEY

1. Validates each request body in REQUESTS_JSON (a JSON array, as printed by
   `cargo run -p worker --example print_requests`) against the `chatv2` request-body schema of
   Cohere's own OpenAPI description, third_party/cohere/cohere-openapi.yaml.
2. Sends two chat calls with images through Cohere's official Python SDK (`cohere` on PyPI) to
   the stand-in at STANDIN_BASE_URL (started by the caller), checks that the SDK parses the
   answers, and validates the bodies the SDK sent and the answers it got against the same spec.

Exits 1 with a message on stderr at the first problem. Run by scripts/cohere_wire_check.sh.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path

import cohere
import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "third_party" / "cohere" / "cohere-openapi.yaml"
SPEC_URI = "urn:cohere:cohere-openapi.yaml"
REQUEST_POINTER = "/paths/~1v2~1chat/post/requestBody/content/application~1json/schema"
RESPONSE_POINTER = "/components/schemas/ChatResponseV2"
SAMPLE_IMAGE = ROOT / "samples" / "images" / "horse.png"
MODEL = "command-a-vision-07-2025"
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"animal": {"type": "boolean"}},
    "required": ["animal"],
}


class CheckFailed(Exception):
    pass


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML speaks YAML 1.1, where `OFF`, `yes` or `no` are booleans and `2024-01-01` a date;
    OpenAPI 3.1 documents are YAML 1.2 (JSON-compatible), where they are strings (the spec's
    `safety_mode` enum has "OFF")."""


_YAML11_ONLY = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML11_ONLY]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _one_of_with_discriminator(validator, one_of, instance, schema):
    """`oneOf` as OpenAPI means it when a `discriminator` sits beside it: the instance's
    discriminating property picks the one variant it must match. Plain JSON Schema ignores
    `discriminator`, and then `{"type": "json_object", "json_schema": {...}}` matches both
    `ResponseFormatV2` variants (neither forbids extra properties, both allow either `type`)."""
    discriminator = schema.get("discriminator")
    if discriminator is None or not validator.is_type(instance, "object"):
        yield from _PLAIN_ONE_OF(validator, one_of, instance, schema)
        return
    name = discriminator["propertyName"]
    mapping = discriminator.get("mapping", {})
    refs = [variant.get("$ref") for variant in one_of]
    if name not in instance:
        yield jsonschema.ValidationError(f"the discriminating property {name!r} is missing")
        return
    value = instance[name]
    # Without an explicit mapping the value names a schema under components/schemas.
    ref = mapping.get(value, f"#/components/schemas/{value}") if isinstance(value, str) else None
    if ref not in refs:
        known = sorted(mapping) or sorted(r.rsplit("/", 1)[-1] for r in refs if r)
        yield jsonschema.ValidationError(f"{name} is {value!r}, expected one of {known}")
        return
    yield from validator.descend(instance, one_of[refs.index(ref)], schema_path=refs.index(ref))


_PLAIN_ONE_OF = jsonschema.Draft202012Validator.VALIDATORS["oneOf"]
OpenApiValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"oneOf": _one_of_with_discriminator}
)


def load_spec() -> tuple[dict, Registry]:
    with SPEC_PATH.open(encoding="utf-8") as file:
        spec = yaml.load(file, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    if not str(spec.get("openapi", "")).startswith("3.1"):
        raise CheckFailed(f"{SPEC_PATH}: expected OpenAPI 3.1, got {spec.get('openapi')!r}")
    if spec["paths"]["/v2/chat"]["post"].get("operationId") != "chatv2":
        raise CheckFailed(f"{SPEC_PATH}: POST /v2/chat is not operation chatv2")
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; $refs like #/components/schemas/X resolve
    # within the whole document.
    registry = Registry().with_resource(SPEC_URI, Resource(contents=spec, specification=DRAFT202012))
    return spec, registry


def validator_for(registry: Registry, pointer: str):
    return OpenApiValidator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry)


def check(validator, instance, what: str) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    lines = [f"{what} is not valid against {SPEC_PATH.relative_to(ROOT)}:"]
    for error in errors:
        # Within oneOf/anyOf, the deepest failure of the most plausible alternative.
        best = jsonschema.exceptions.best_match([error])
        where = "/" + "/".join(str(p) for p in best.absolute_path)
        schema_at = "/".join(str(p) for p in best.absolute_schema_path)
        lines.append(f"  at {where}: {_short(best.message)} (schema path {schema_at})")
    raise CheckFailed("\n".join(lines))


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[:limit] + "..."


def check_request_bodies(path: Path, validator) -> int:
    bodies = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(bodies, list) or not bodies:
        raise CheckFailed(f"{path}: expected a non-empty JSON array of request bodies")
    for index, body in enumerate(bodies):
        check(validator, body, f"request body {index} printed by print_requests")
    return len(bodies)


def sdk_round_trip(base_url: str, api_key: str, request_validator, response_validator) -> int:
    client = cohere.ClientV2(api_key=api_key, base_url=base_url, timeout=30)
    image = base64.b64encode(SAMPLE_IMAGE.read_bytes()).decode("ascii")
    content = [
        {"type": "text", "text": "Is there an animal in this image? Answer in JSON."},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}", "detail": "auto"}},
    ]
    messages = [{"role": "user", "content": content}]
    calls = [
        ("a text call", {}),
        ("a json_object call", {"response_format": {"type": "json_object", "json_schema": ANSWER_SCHEMA}}),
    ]
    for what, extra in calls:
        try:
            raw = client.v2.with_raw_response.chat(model=MODEL, messages=messages, **extra)
        except Exception as error:  # the SDK raises its own error types for 4xx/5xx and parse errors
            raise CheckFailed(f"the official SDK failed on {what}: {type(error).__name__}: {_short(str(error))}") from error
        http = raw._response  # the httpx response: what went over the wire
        check(request_validator, json.loads(http.request.content), f"the body the SDK sent for {what}")
        check(response_validator, http.json(), f"the stand-in's answer to {what}")
        answer = raw.data
        text = "".join(part.text for part in (answer.message.content or []) if part.type == "text")
        if not text.strip():
            raise CheckFailed(f"{what}: the SDK parsed an answer with no text: {answer!r}")
        if answer.finish_reason != "COMPLETE":
            raise CheckFailed(f"{what}: finish_reason is {answer.finish_reason!r}, expected 'COMPLETE'")
        usage = answer.usage
        if usage is None or usage.billed_units is None or usage.tokens is None:
            raise CheckFailed(f"{what}: the SDK parsed no usage (billed_units and tokens): {usage!r}")
        if "response_format" in extra:
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as error:
                raise CheckFailed(f"{what}: the text is not JSON ({error}): {_short(text)}") from error
            if not isinstance(parsed, dict) or not isinstance(parsed.get("animal"), bool):
                raise CheckFailed(f"{what}: the JSON lacks the required boolean 'animal': {_short(text)}")
    return len(calls)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    requests_path, base_url, api_key = Path(argv[1]), argv[2], argv[3]
    try:
        _spec, registry = load_spec()
        request_validator = validator_for(registry, REQUEST_POINTER)
        response_validator = validator_for(registry, RESPONSE_POINTER)
        count = check_request_bodies(requests_path, request_validator)
        calls = sdk_round_trip(base_url, api_key, request_validator, response_validator)
    except CheckFailed as failure:
        print(f"cohere wire check FAILED: {failure}", file=sys.stderr)
        return 1
    print(
        f"cohere wire check: {count} request bodies valid against {SPEC_PATH.name}; "
        f"official SDK (cohere {cohere.__version__}) round trip ok "
        f"({calls} calls; bodies sent and answers valid against the spec)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
