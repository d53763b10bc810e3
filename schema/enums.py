"""Closed vocabularies of the customer domain, shared by types, inputs and filters."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum
class CustomerKind(Enum):
    COMPANY = "COMPANY"
    PERSON = "PERSON"


@strawberry.enum(description="A: high value, B: potential, C: normal.")
class CustomerLevel(Enum):
    A = "A"
    B = "B"
    C = "C"


@strawberry.enum
class OpportunityStage(Enum):
    LEAD = "LEAD"
    QUALIFIED = "QUALIFIED"
    PROPOSAL = "PROPOSAL"
    NEGOTIATION = "NEGOTIATION"
    WON = "WON"
    LOST = "LOST"


@strawberry.enum
class TicketStatus(Enum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


@strawberry.enum
class TicketPriority(Enum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


@strawberry.enum
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.enum(description="RFM segments, from recency, frequency and value of won deals.")
class RfmSegment(Enum):
    CHAMPIONS = "CHAMPIONS"
    LOYAL = "LOYAL"
    PROMISING = "PROMISING"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    AT_RISK = "AT_RISK"
    HIBERNATING = "HIBERNATING"
    NO_PURCHASE = "NO_PURCHASE"
