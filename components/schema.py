"""The published result schema, and validation against it (for tests, the report and users)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "schema" / "result-v1.json"


@cache
def result_schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text()))


def validate_result(doc: Any) -> None:
    """Raise jsonschema.ValidationError naming the first bad field."""
    import jsonschema

    jsonschema.validate(doc, result_schema(), cls=jsonschema.Draft202012Validator)
