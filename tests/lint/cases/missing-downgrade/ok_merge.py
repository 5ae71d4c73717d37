

def upgrade():
    pass


def downgrade():
    pass
