"""POST /api/search on a running app: ranked hits with source, page, heading, score, snippet
and the retrievers that found them."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import make_settings
from tests.web.conftest import running_app


def test_search_returns_ranked_hits_with_their_provenance(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    folder = settings.watch_path
    (folder / "finance").mkdir(parents=True)
    (folder / "finance" / "travel.md").write_text(
        "# Travel\n\nFlights must be booked 14 days before departure.\n")  # fmt: skip
    with running_app(settings) as client:
        deadline = time.monotonic() + 60
        while '"indexed":1' not in client.get("/api/documents").text:
            assert time.monotonic() < deadline, "never indexed"
            time.sleep(0.1)
        reply = client.post("/api/search", json={"query": "When must I book a flight?", "k": 3})
        assert reply.status_code == 200
        hit = reply.json()[0]
        assert hit["source"] == "finance/travel.md"
        assert hit["page"] is None
        assert hit["heading"] == "Travel"
        assert hit["score"] > 0
        assert "14 days" in hit["snippet"]
        assert "vector" in hit["found_by"]
        scoped = client.post("/api/search", json={"query": "flight", "collections": ["hr"]})
        assert scoped.json() == []
        assert client.post("/api/search", json={"query": ""}).status_code == 400
