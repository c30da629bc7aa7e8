"""All models, imported here so that metadata (and Alembic) sees every table."""

from models.base import Base, utcnow
from models.conversation import ConversationState
from models.identity import (
    ROLE_NAMES,
    ROLES,
    BindAttempt,
    BindCode,
    Binding,
    ParentLink,
    Person,
    PersonRole,
    Student,
)
from models.inbound import InboundMessage
from models.outbox import AccessToken, Delivery, Push

__all__ = [
    "ROLES", "ROLE_NAMES", "AccessToken", "Base", "BindAttempt", "BindCode", "Binding", "ConversationState",
    "Delivery", "InboundMessage", "ParentLink", "Person", "PersonRole", "Push", "Student", "utcnow",
]
