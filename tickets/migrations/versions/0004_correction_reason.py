"""Why an agent moved a ticket, kept on the correction itself (it was only on the ticket's event).

Revision ID: 0004_correction_reason
Revises: 0003_outbox
Create Date: 2026-12-07 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_correction_reason'
down_revision = '0003_outbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('routing_corrections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('routing_corrections', schema=None) as batch_op:
        batch_op.drop_column('reason')
