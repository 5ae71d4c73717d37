from alembic import op


def upgrade():
    op.execute("UPDATE documents SET payload = payload || '{\"v\": 2}'")


# umbau: ignore[missing-downgrade] the v1 payloads are not kept; restore a backup instead
def downgrade():
    pass
