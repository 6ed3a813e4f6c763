"""activity_log.journal_id: rejections drained from the Redis journal are written once

Revision ID: 5c1d0e7a9f42
Revises: bdb21f5808aa
Create Date: 2026-11-21 13:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '5c1d0e7a9f42'
down_revision = 'bdb21f5808aa'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('activity_log', sa.Column('journal_id', sa.String(length=40), nullable=True))
    op.create_index(op.f('ix_activity_log_journal_id'), 'activity_log', ['journal_id'],
                    unique=True)


def downgrade():
    op.drop_index(op.f('ix_activity_log_journal_id'), table_name='activity_log')
    with op.batch_alter_table('activity_log') as batch:
        batch.drop_column('journal_id')
