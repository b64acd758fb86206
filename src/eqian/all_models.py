"""Imports every model module so that ``Base.metadata`` is complete (Alembic, tests, create_all)."""

from eqian.core import accounts, audit, outbox
from eqian.core.db import Base
from eqian.environment import models as environment_models
from eqian.mediation import models as mediation_models
from eqian.notifications import models as notification_models
from eqian.organizations import models as organization_models

__all__ = [
    "Base",
    "accounts",
    "audit",
    "environment_models",
    "mediation_models",
    "notification_models",
    "organization_models",
    "outbox",
]
