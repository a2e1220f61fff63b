"""Sample Data Extension definitions for tests, demos and benchmarks.

`IDENTIFY_DE` has the Segment-style Identify columns; `ORDER_COMPLETED_DE` is a track DE with a
two-column primary key. Copy them (``copy.deepcopy``) before changing them.
"""

from __future__ import annotations

from typing import Any

IDENTIFY_DE: dict[str, Any] = {
    "key": "IDENTIFY",
    "fields": [
        {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
        {"name": "Email", "type": "EmailAddress"},
        {"name": "First Name", "type": "Text", "length": 100},
        {"name": "Last Name", "type": "Text", "length": 100},
        {"name": "Created At", "type": "Date"},
        {"name": "Plan", "type": "Text", "length": 50},
        {"name": "Logins", "type": "Number"},
        {"name": "Score", "type": "Decimal", "precision": 18, "scale": 2},
        {"name": "Is Active", "type": "Boolean"},
    ],
}

ORDER_COMPLETED_DE: dict[str, Any] = {
    "key": "ORDER_COMPLETED",
    "fields": [
        {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
        {"name": "Order Id", "type": "Text", "length": 100, "primary_key": True},
        {"name": "Total", "type": "Decimal", "precision": 18, "scale": 2},
        {"name": "Currency", "type": "Text", "length": 3},
        {"name": "Products", "type": "Number"},
        {"name": "Ordered At", "type": "Date"},
    ],
}

SAMPLE_DATA_EXTENSIONS: list[dict[str, Any]] = [IDENTIFY_DE, ORDER_COMPLETED_DE]
SAMPLE_EVENT_DEFINITIONS: list[str] = ["APIEvent-1"]
