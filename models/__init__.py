"""All models, imported here so that metadata (and Alembic) sees every table."""

from models.base import Base, utcnow
from models.bus import BusAlarm, BusCountNotice, BusLeave, BusRoute, BusStop, BusSubscription, BusTrip
from models.canteen import (
    AccompaniedMeal,
    CanteenFeedback,
    CanteenReply,
    FeedbackPhoto,
    MenuItem,
    MenuWeek,
    SurveyResponse,
    SurveyRound,
)
from models.console import ConsoleAccount, ConsoleLoginThrottle
from models.conversation import ConversationState
from models.duty import DutyCheckin, DutyOverride, DutyPost, DutyRoster, DutyShift, DutySwap
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
from models.inbound import InboundMessage, SeenNonce
from models.media import DownloadedPhoto
from models.numbering import NumberSeries
from models.outbox import AccessToken, Delivery, DeliveryAlert, Push
from models.repair import Asset, RepairCategory, RepairTicket, Room, TicketEvent, TicketFollower, TicketPhoto
from models.safety import Drill, FireCheck, SafetyTopic
from models.school import CalendarDay, JobRun, SchoolSetting

__all__ = [
    "ROLES", "ROLE_NAMES", "AccessToken", "AccompaniedMeal", "CanteenFeedback", "CanteenReply", "MenuItem", "MenuWeek", "SurveyResponse", "SurveyRound", "BusAlarm", "BusCountNotice", "BusLeave", "BusRoute", "BusStop", "BusSubscription", "BusTrip", "Asset", "Base", "BindAttempt", "BindCode", "Binding", "ConsoleAccount", "ConsoleLoginThrottle", "ConversationState", "DownloadedPhoto", "DutyCheckin", "DutyOverride", "DutyPost", "DutyRoster", "DutyShift", "DutySwap",
    "CalendarDay", "Delivery", "DeliveryAlert", "Drill", "FeedbackPhoto", "FireCheck", "InboundMessage", "JobRun", "NumberSeries", "ParentLink", "Person", "PersonRole", "Push", "RepairCategory", "RepairTicket", "Room", "SafetyTopic", "SchoolSetting", "SeenNonce", "Student", "TicketEvent", "TicketFollower", "TicketPhoto", "utcnow",
]
