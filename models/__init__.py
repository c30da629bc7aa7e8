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
from models.console import AuditEntry, ConsoleAccount, ConsoleLoginThrottle
from models.conversation import ConversationState
from models.county import CountyCode, CountyConversation, CountyFollower, CountySchool
from models.duty import DutyCheckin, DutyOverride, DutyPost, DutyRoster, DutyShift, DutySwap
from models.identity import (
    ROLE_NAMES,
    ROLES,
    BindAttempt,
    BindCode,
    Binding,
    BindWindow,
    ParentLink,
    Person,
    PersonRole,
    Student,
)
from models.inbound import InboundMessage, SeenNonce
from models.media import DownloadedPhoto
from models.numbering import NumberSeries
from models.outbox import AccessToken, Delivery, DeliveryAlert, Push, TemplateQuota
from models.repair import Asset, RepairCategory, RepairTicket, Room, TicketEvent, TicketFollower, TicketPhoto
from models.safety import Drill, FireCheck, SafetyTopic
from models.school import CalendarDay, JobRun, SchoolSetting
from models.voice import (
    Notice,
    NoticeRecipient,
    OfficeSurvey,
    OfficeSurveyComment,
    OfficeSurveyTaker,
    OfficeSurveyTally,
    Suggestion,
    SuggestionReply,
)
from models.tasks import Task, TaskCheck, TaskOccurrence, TaskPhoto
from models.wechat import WeChatMenu

__all__ = [
    "ROLE_NAMES",
    "ROLES",
    "AccessToken",
    "AccompaniedMeal",
    "Asset",
    "AuditEntry",
    "Base",
    "BindAttempt",
    "BindCode",
    "Binding",
    "BindWindow",
    "BusAlarm",
    "BusCountNotice",
    "BusLeave",
    "BusRoute",
    "BusStop",
    "BusSubscription",
    "BusTrip",
    "CalendarDay",
    "CanteenFeedback",
    "CanteenReply",
    "ConsoleAccount",
    "ConsoleLoginThrottle",
    "ConversationState",
    "CountyCode",
    "CountyConversation",
    "CountyFollower",
    "CountySchool",
    "Delivery",
    "DeliveryAlert",
    "DownloadedPhoto",
    "Drill",
    "DutyCheckin",
    "DutyOverride",
    "DutyPost",
    "DutyRoster",
    "DutyShift",
    "DutySwap",
    "FeedbackPhoto",
    "FireCheck",
    "InboundMessage",
    "JobRun",
    "MenuItem",
    "MenuWeek",
    "Notice",
    "NoticeRecipient",
    "NumberSeries",
    "OfficeSurvey",
    "OfficeSurveyComment",
    "OfficeSurveyTaker",
    "OfficeSurveyTally",
    "ParentLink",
    "Person",
    "PersonRole",
    "Push",
    "RepairCategory",
    "RepairTicket",
    "Room",
    "SafetyTopic",
    "SchoolSetting",
    "SeenNonce",
    "Student",
    "Suggestion",
    "SuggestionReply",
    "SurveyResponse",
    "SurveyRound",
    "Task",
    "TaskCheck",
    "TaskOccurrence",
    "TaskPhoto",
    "TemplateQuota",
    "TicketEvent",
    "TicketFollower",
    "TicketPhoto",
    "utcnow",
    "WeChatMenu",
]
