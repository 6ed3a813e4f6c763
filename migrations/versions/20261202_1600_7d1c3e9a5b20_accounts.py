"""accounts: verified and deleted people, the security audit trail, account emails

Revision ID: 7d1c3e9a5b20
Revises: 492f0fbd6d83
Create Date: 2026-12-02 16:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7d1c3e9a5b20'
down_revision = '492f0fbd6d83'
branch_labels = None
depends_on = None

EVENT_KINDS = "'confirmation', 'waitlisted', 'promoted', 'cancellation'"
ACCOUNT_KINDS = "'password_reset', 'verify_email', 'account_exists'"
SECURITY_KINDS = ("'sign_in', 'sign_in_failed', 'sign_in_throttled', 'sign_out', 'sign_up', "
                  "'password_reset_asked', 'password_reset', 'password_changed', "
                  "'email_verified', 'role_granted', 'role_revoked', 'data_exported', "
                  "'account_deleted'")


def upgrade():
    # Reviewed by hand: UTCDateTime is stored as DateTime(timezone=True); SQLite
    # needs batch mode to change a column's NULL-ability and CHECKs.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('event_id', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('registration_id', existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint(batch_op.f('ck_outbox_kind_known'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_outbox_kind_known'), f"kind IN ({EVENT_KINDS}, {ACCOUNT_KINDS})")
        batch_op.create_check_constraint(
            batch_op.f('ck_outbox_event_with_registration'),
            "(event_id IS NULL) = (registration_id IS NULL)")
        batch_op.create_check_constraint(
            batch_op.f('ck_outbox_account_mail_has_no_event'),
            f"(event_id IS NULL) = (kind IN ({ACCOUNT_KINDS}))")

    op.create_table('security_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.String(length=200), nullable=True),
    sa.CheckConstraint(f"kind IN ({SECURITY_KINDS})",
                       name=op.f('ck_security_events_kind_known')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                            name=op.f('fk_security_events_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_security_events'))
    )
    with op.batch_alter_table('security_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_events_occurred_at'), ['occurred_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_security_events_user_id'), ['user_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('security_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_events_user_id'))
        batch_op.drop_index(batch_op.f('ix_security_events_occurred_at'))
    op.drop_table('security_events')

    op.execute(f"DELETE FROM outbox WHERE kind IN ({ACCOUNT_KINDS})")  # noqa: S608 - constants
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_outbox_account_mail_has_no_event'),
                                 type_='check')
        batch_op.drop_constraint(batch_op.f('ck_outbox_event_with_registration'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_outbox_kind_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_outbox_kind_known'),
                                         f"kind IN ({EVENT_KINDS})")
        batch_op.alter_column('registration_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('event_id', existing_type=sa.Integer(), nullable=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('email_verified_at')
