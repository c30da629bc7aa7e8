"""All models, imported here so that metadata (and Alembic) sees every table."""

from models.assets import (
    AssetEvent,
    AssetLoan,
    AssetPhoto,
    Disposal,
    Stocktake,
    StocktakeCheck,
    StocktakePhoto,
    Supply,
    SupplyMove,
)
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
    BindWindow,
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
from models.wechat import WeChatMenu

__all__ = [
    "ROLE_NAMES",
    "ROLES",
    "AccessToken",
    "AccompaniedMeal",
    "Asset",
    "AssetEvent",
    "AssetLoan",
    "AssetPhoto",
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
    "Delivery",
    "DeliveryAlert",
    "Disposal",
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
    "NumberSeries",
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
    "Stocktake",
    "StocktakeCheck",
    "StocktakePhoto",
    "Student",
    "Supply",
    "SupplyMove",
    "SurveyResponse",
    "SurveyRound",
    "TicketEvent",
    "TicketFollower",
    "TicketPhoto",
    "utcnow",
    "WeChatMenu",
]
