"""Write the JSON Schema of every wire model next to it: ``python -m schemas.export``.

The checked-in files are the contract other Kafka clients read; a test fails when they
drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.inbound import SCHEMA_VERSION, InboundMessage

HERE = Path(__file__).resolve().parent


def schema_files() -> dict[Path, str]:
    schema = InboundMessage.model_json_schema()
    schema["$id"] = f"https://frontdoor.invalid/schemas/inbound.v{SCHEMA_VERSION}.json"
    return {HERE / f"inbound.v{SCHEMA_VERSION}.schema.json": json.dumps(schema, indent=2) + "\n"}


def main() -> None:
    for path, text in schema_files().items():
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
