"""The published result schemas, and validation against them (for tests, the report and users)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "schema"
SCHEMA_FILES = {"k8s-footprint/result/v1": "result-v1.json", "k8s-footprint/result/v2": "result-v2.json"}
SCHEMA_PATH = SCHEMA_DIR / SCHEMA_FILES["k8s-footprint/result/v2"]  # the current one


@cache
def result_schema(schema_id: str = "k8s-footprint/result/v2") -> dict[str, Any]:
    return dict(json.loads((SCHEMA_DIR / SCHEMA_FILES[schema_id]).read_text()))


def schema_for(doc: Any) -> dict[str, Any]:
    """The schema a document names, v2 when it names none we know. For v2, the branch its status
    picks (a result or no_result), so that an error names the bad field, not just "no branch fits"."""
    name = doc.get("schema") if isinstance(doc, dict) else None
    schema = result_schema(name if name in SCHEMA_FILES else "k8s-footprint/result/v2")
    if "oneOf" not in schema:
        return schema
    branch = "noResult" if isinstance(doc, dict) and doc.get("status") == "no_result" else "result"
    picked = {k: v for k, v in schema.items() if k != "oneOf"}
    picked["$ref"] = f"#/$defs/{branch}"
    return picked


def validate_result(doc: Any) -> None:
    """Raise jsonschema.ValidationError naming the first bad field."""
    import jsonschema

    jsonschema.validate(doc, schema_for(doc), cls=jsonschema.Draft202012Validator)
