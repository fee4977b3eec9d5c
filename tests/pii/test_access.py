"""The access log's request lines: routes kept, what clients put in them replaced by pattern."""

from __future__ import annotations

import logging

import pytest

from appliance.pii.access import request_target
from appliance.pii.logs import RedactingFilter

ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/api/users/Ingrid%20Solberg/data", "/api/users/{name}/data"),
        ("/api/users/ingrid", "/api/users/{name}"),
        ("/api/documents/file/hr/Ingrid%20Solberg.pdf", "/api/documents/file/{path}"),
        ("/api/documents/text/hr/review.md", "/api/documents/text/{path}"),
        (
            f"/api/conversations/{ID}/messages/12/feedback",
            f"/api/conversations/{ID}/messages/12/feedback",
        ),
        ("/api/conversations/Ingrid/messages", "/api/conversations/{id}/messages"),
        ("/api/conversations/export", "/api/conversations/export"),
        ("/api/keys/12", "/api/keys/12"),
        ("/api/keys/ingrid.solberg@example.com", "/api/keys/{id}"),
        ("/view?path=hr/Ingrid.md&chunk=c1&page=3", "/view?path=…&chunk=…&page=…"),
        ("/api/audit?actor=ingrid&action=chat", "/api/audit?actor=…&action=…"),
        ("/api/me?Ingrid%20Solberg=1", "/api/me?{…}=…"),
        ("/static/app.js", "/static/app.js"),
        ("/", "/"),
        ("/no/such/Ingrid%20Solberg/+4791234567", "/no/such/{…}/{…}"),
    ],
)
def test_client_text_in_a_request_line_is_replaced(target: str, logged: str) -> None:
    assert request_target(target) == logged


def test_the_access_record_keeps_its_shape_without_the_client_or_the_name() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("10.1.2.3:5555", "DELETE", "/api/users/Ingrid%20Solberg/data", "1.1", 200),
        None,
    )
    assert RedactingFilter(lambda text: text).filter(record)
    assert record.getMessage() == '- - "DELETE /api/users/{name}/data HTTP/1.1" 200'
