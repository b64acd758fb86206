"""Imports every model module so that ``Base.metadata`` is complete (Alembic, tests, create_all)."""

from eqian.core import accounts, audit
from eqian.core.db import Base
from eqian.mediation import models as mediation_models
from eqian.organizations import models as organization_models

__all__ = ["Base", "accounts", "audit", "mediation_models", "organization_models"]
