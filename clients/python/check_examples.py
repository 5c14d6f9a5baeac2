"""Validates every example in an OpenAPI 3.1 document against its schema (JSON Schema 2020-12).

Usage: check_examples.py DOCUMENT...  Exits non-zero, listing them, when any example is invalid.
Examples checked: `example`/`examples` of every schema (and nested schema), and of every
parameter, header and media type (against its `schema`).
"""

import json
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:document"
# Keywords whose values are schemas (one, a list, or a map of them).
ONE = ("items", "not", "contentSchema", "additionalProperties", "propertyNames")
MANY = ("oneOf", "anyOf", "allOf", "prefixItems")
MAP = ("properties", "patternProperties", "$defs")


def escape(token):
    return str(token).replace("~", "~0").replace("/", "~1")


def schema_examples(schema, pointer):
    """(pointer of the schema, example) for every example in `schema` and what it nests."""
    if not isinstance(schema, dict):
        return
    if "example" in schema:
        yield pointer, schema["example"]
    for example in schema.get("examples", []):
        yield pointer, example
    for key in ONE:
        yield from schema_examples(schema.get(key), f"{pointer}/{key}")
    for key in MANY:
        for i, sub in enumerate(schema.get(key, [])):
            yield from schema_examples(sub, f"{pointer}/{key}/{i}")
    for key in MAP:
        for name, sub in (schema.get(key) or {}).items():
            yield from schema_examples(sub, f"{pointer}/{key}/{escape(name)}")


def holder_examples(node, pointer):
    """Examples of parameters, headers and media types (objects with a `schema`), and of
    every schema, anywhere under `node`."""
    if isinstance(node, dict):
        if isinstance(node.get("schema"), dict):
            schema_pointer = f"{pointer}/schema"
            if "example" in node:
                yield schema_pointer, node["example"]
            for example in (node.get("examples") or {}).values():
                if "value" in example:
                    yield schema_pointer, example["value"]
            yield from schema_examples(node["schema"], schema_pointer)
        for key, value in node.items():
            if key != "schema":
                yield from holder_examples(value, f"{pointer}/{escape(key)}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from holder_examples(value, f"{pointer}/{i}")


def check(path):
    document = json.load(open(path))
    registry = Registry().with_resource(BASE, Resource(contents=document, specification=DRAFT202012))
    found = list(holder_examples(document.get("paths", {}), "/paths"))
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        found.extend(schema_examples(schema, f"/components/schemas/{escape(name)}"))
    invalid = []
    for pointer, example in found:
        validator = Draft202012Validator(
            {"$ref": f"{BASE}#{pointer}"},
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        for error in validator.iter_errors(example):
            invalid.append(f"{path}#{pointer}: {error.message} (at {error.json_path})")
    return len(found), invalid


def main():
    failed = False
    for path in sys.argv[1:]:
        count, invalid = check(path)
        for line in invalid:
            print(line, file=sys.stderr)
        failed = failed or bool(invalid) or count == 0
        print(f"{path}: {count} examples, {len(invalid)} invalid")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
