"""Zero-downtime operations for revision files: ``from umbau import ops``.

Each helper is called inside ``upgrade()``/``downgrade()`` like Alembic's ``op``, emits
its statements through ``op`` (``umbau upgrade --sql`` and ``umbau lint`` see them),
runs each statement that takes a lock under ``lock_timeout`` with umbau's retries, and
finds its own leftovers when rerun after a crash::

    from umbau import ops

    def upgrade():
        ops.create_index("idx_orders_shop_created", "orders", ["shop_id", "created_at"])
        ops.add_foreign_key("fk_orders_shop_id_shops", "orders", "shops",
                            ["shop_id"], ["id"])
        ops.rename_column("documents", "ocr_text", "extracted_text", type_=sa.Text())

See docs/ops.md.
"""

from __future__ import annotations

from umbau.ops.columns import (
    add_column,
    change_type,
    contract_change_type,
    contract_rename_column,
    contract_rename_table,
    rename_backfill,
    rename_column,
    rename_table,
    revert_change_type,
    revert_contract_change_type,
    revert_contract_rename_column,
    revert_contract_rename_table,
    revert_rename_column,
    revert_rename_table,
    type_backfill,
)
from umbau.ops.constraints import add_check, add_foreign_key, set_not_null, validate
from umbau.ops.indexes import add_primary_key, add_unique, create_index, drop_index

__all__ = [
    "add_check",
    "add_column",
    "add_foreign_key",
    "add_primary_key",
    "add_unique",
    "change_type",
    "contract_change_type",
    "contract_rename_column",
    "contract_rename_table",
    "create_index",
    "drop_index",
    "rename_backfill",
    "rename_column",
    "rename_table",
    "revert_change_type",
    "revert_contract_change_type",
    "revert_contract_rename_column",
    "revert_contract_rename_table",
    "revert_rename_column",
    "revert_rename_table",
    "set_not_null",
    "type_backfill",
    "validate",
]
