"""Imports every model module so that ``Base.metadata`` is complete (Alembic, tests, create_all)."""

from eqian.activities import models as activity_models
from eqian.cockpit import models as cockpit_models
from eqian.core import accounts, audit, idempotency, outbox
from eqian.core.db import Base
from eqian.environment import models as environment_models
from eqian.hazards import models as hazard_models
from eqian.incidents import models as incident_models
from eqian.mediation import models as mediation_models
from eqian.messaging import models as messaging_models
from eqian.notifications import models as notification_models
from eqian.organizations import models as organization_models
from eqian.requests import models as request_models
from eqian.safety_index import models as safety_index_models
from eqian.workforce import models as workforce_models

__all__ = [
    "Base",
    "accounts",
    "activity_models",
    "audit",
    "cockpit_models",
    "environment_models",
    "hazard_models",
    "idempotency",
    "incident_models",
    "mediation_models",
    "messaging_models",
    "notification_models",
    "organization_models",
    "outbox",
    "request_models",
    "safety_index_models",
    "workforce_models",
]
