"""``frontdoor bench console`` on a small seeded SQLite database: every page it times answers 200
and the figures have the shape the README shows."""

from __future__ import annotations

from web.console.bench import run_console_bench


def test_the_console_bench_times_each_page_on_a_seeded_database() -> None:
    result = run_console_bench(500, 2_000, requests=20, postgres=False)
    assert (result["tickets"], result["messages"]) == (500, 2_000)
    figures = result["sqlite"]
    for page in ("queue", "filtered_queue", "ticket", "search"):
        assert 0 < figures[f"{page}_p50_ms"] <= figures[f"{page}_p95_ms"], page
