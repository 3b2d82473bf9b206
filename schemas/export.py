"""Write the JSON Schema of every wire model next to it: ``python -m schemas.export``.

The checked-in files are the contract other Kafka clients read; a test fails when they
drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.inbound import SCHEMA_VERSION, InboundMessage
from schemas.routed import EVENT_SCHEMA_VERSION, ROUTED_SCHEMA_VERSION, RoutedMessage, RoutingEvent

HERE = Path(__file__).resolve().parent


MODELS: tuple[tuple[str, type[BaseModel], int], ...] = (
    ("inbound", InboundMessage, SCHEMA_VERSION),
    ("routed", RoutedMessage, ROUTED_SCHEMA_VERSION),
    ("event", RoutingEvent, EVENT_SCHEMA_VERSION),
)


def schema_files() -> dict[Path, str]:
    files = {}
    for name, model, version in MODELS:
        schema = model.model_json_schema()
        schema["$id"] = f"https://frontdoor.invalid/schemas/{name}.v{version}.json"
        files[HERE / f"{name}.v{version}.schema.json"] = json.dumps(schema, indent=2) + "\n"
    return files


def main() -> None:
    for path, text in schema_files().items():
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
