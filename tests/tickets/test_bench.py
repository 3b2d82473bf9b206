"""``frontdoor bench tickets --json`` runs end to end with a tiny corpus and prints the contract."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import frontdoor


@pytest.mark.postgres
def test_bench_tickets_prints_both_databases_beside_the_raw_baseline(postgres_url: str) -> None:
    result = frontdoor("bench", "tickets", "--messages", "120", "--search-messages", "400", "--batch", "50",
                       "--postgres-url", postgres_url, "--json", env=dict(os.environ), timeout=600)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["messages"] == 120
    for database in ("sqlite", "postgresql"):
        entry = figures[database]
        assert set(entry) == {"merged_per_s", "raw_insert_per_s", "ratio_to_raw", "search_p95_ms"}
        assert entry["merged_per_s"] > 0 and entry["raw_insert_per_s"] > 0 and entry["search_p95_ms"] > 0
        ratio = entry["merged_per_s"] / entry["raw_insert_per_s"]
        assert entry["ratio_to_raw"] == pytest.approx(ratio, rel=0.01)
