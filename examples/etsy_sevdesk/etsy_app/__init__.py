"""The Etsy -> sevDesk invoice sync, as far as its database is concerned.

``RELEASES`` maps each release to the last revision it ships, oldest first.
"""
from __future__ import annotations

RELEASES: dict[str, str] = {
    "1.0.0": "3f1c2a9b7d10",  # customers, orders, invoices, integration_state
    "1.1.0": "f2b87e5d0a39",  # multi-shop: shops, orders.shop_id, default shop
}
