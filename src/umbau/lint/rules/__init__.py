"""Every lint rule, registered by explicit import (one module per rule)."""

from __future__ import annotations

from umbau.lint.registry import register
from umbau.lint.rules import (
    add_column_not_null_without_default,
    add_column_serial_or_generated,
    add_column_volatile_default,
    add_primary_key,
    add_unique_constraint,
    alter_column_type,
    check_not_valid,
    concurrently_in_transaction,
    drop_column,
    drop_database,
    drop_not_null,
    drop_table,
    engine_rules,
    foreign_key_not_valid,
    missing_downgrade,
    prefer_bigint_primary_key,
    prefer_text_over_varchar,
    prefer_timestamptz,
    rename_column,
    rename_table,
    require_concurrent_index_creation,
    require_concurrent_index_deletion,
    require_concurrent_reindex,
    set_logged_unlogged,
    set_not_null,
    truncate_table,
    update_delete_without_where,
    vacuum_full_or_cluster,
    validate_in_same_transaction,
)

for _module in (
    require_concurrent_index_creation,
    require_concurrent_index_deletion,
    concurrently_in_transaction,
    foreign_key_not_valid,
    check_not_valid,
    validate_in_same_transaction,
    set_not_null,
    add_column_not_null_without_default,
    add_column_volatile_default,
    alter_column_type,
    add_unique_constraint,
    add_primary_key,
    rename_column,
    rename_table,
    drop_column,
    drop_table,
    drop_database,
    update_delete_without_where,
    truncate_table,
    vacuum_full_or_cluster,
    require_concurrent_reindex,
    set_logged_unlogged,
    add_column_serial_or_generated,
    missing_downgrade,
    drop_not_null,
    prefer_bigint_primary_key,
    prefer_timestamptz,
    prefer_text_over_varchar,
):
    register(_module.RULE)

register(engine_rules.UNPARSEABLE_SQL)
register(engine_rules.UNUSED_IGNORE)
register(engine_rules.IGNORE_NEEDS_REASON)
register(engine_rules.UNRENDERED_REVISION)
