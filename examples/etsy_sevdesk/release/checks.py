"""What each release of the Etsy -> sevDesk sync needs, for the stand-in service
(``health_server.py``) and the smoke test (``smoke.py``)."""

from __future__ import annotations

from typing import Any

APP = "etsy-sevdesk"

# keys the application reads from its env file, per release (guide 000, "Breaking
# Changes", 1.1.0: ETSY_SHOP_ID is now ETSY_DEFAULT_SHOP_ID)
REQUIRED_ENV: dict[str, tuple[str, ...]] = {
    "1.0.0": ("DATABASE_URL", "ETSY_API_KEY", "ETSY_SHOP_ID", "SEVDESK_API_TOKEN"),
    "1.1.0": ("DATABASE_URL", "ETSY_API_KEY", "ETSY_DEFAULT_SHOP_ID", "SEVDESK_API_TOKEN"),
}
# tables each release reads (1.1.0 runs once the pre-deploy revisions are in)
REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "1.0.0": ("customers", "orders", "invoices", "integration_state"),
    "1.1.0": ("customers", "orders", "invoices", "integration_state", "shops"),
}


def smoke(conn: Any, env: dict[str, str], version: str) -> list[str]:
    """The failures of the data checks of ``version`` (an empty list: all passed)."""
    failures: list[str] = []
    if version != "1.1.0":
        return failures
    if "ETSY_SHOP_ID" in env:
        failures.append(".env still has ETSY_SHOP_ID (1.1.0 reads ETSY_DEFAULT_SHOP_ID)")
    default = conn.execute(
        "SELECT s.etsy_shop_id FROM shops AS s JOIN integration_state AS i "
        "ON i.key = 'default_shop' AND s.id = (i.value ->> 'shop_id')::integer").fetchone()
    if default is None:
        failures.append("no default shop (integration_state['default_shop'])")
    elif default[0] != env.get("ETSY_DEFAULT_SHOP_ID"):
        failures.append(f"the default shop is Etsy shop {default[0]}, .env names "
                        f"{env.get('ETSY_DEFAULT_SHOP_ID')} (ETSY_DEFAULT_SHOP_ID)")
    orphans = conn.execute("SELECT count(*) FROM orders WHERE shop_id IS NULL").fetchone()[0]
    if orphans:
        failures.append(f"{orphans} order(s) without a shop")
    valid = conn.execute("SELECT bool_and(convalidated) FROM pg_constraint "
                         "WHERE conrelid = 'orders'::regclass AND contype = 'f' "
                         "AND conname LIKE '%shop%'").fetchone()[0]
    if not valid:
        failures.append("the foreign key orders.shop_id -> shops is not validated")
    return failures
