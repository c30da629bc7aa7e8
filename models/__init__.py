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
from models.safety import Drill, FireCheck, SafetyTopic
from models.school import CalendarDay, JobRun, SchoolSetting

__all__ = [
    "ROLES", "ROLE_NAMES", "AccessToken", "Base", "BindAttempt", "BindCode", "Binding", "ConversationState",
    "CalendarDay", "Delivery", "Drill", "FireCheck", "InboundMessage", "JobRun", "ParentLink", "Person", "PersonRole", "Push", "SafetyTopic", "SchoolSetting", "Student", "utcnow",
]
