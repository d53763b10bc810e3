"""All models, imported here so that `Base.metadata` knows every table."""

from db.models.audit import AuditEvent
from db.models.consent import Consent
from db.models.contact import Contact
from db.models.contract import Contract, Payment
from db.models.custom_field import CustomFieldDefinition, SensitiveField
from db.models.customer import Customer
from db.models.department import Department
from db.models.export import ExportFile, ExportJob, StoredFileChunk
from db.models.identity import PartnerToken, RefreshToken
from db.models.import_job import ImportJob, ImportJobIssue
from db.models.interaction import Interaction
from db.models.opportunity import Opportunity, OpportunityStageChange
from db.models.policy_rule import PolicyRule
from db.models.task import Task
from db.models.ticket import Ticket
from db.models.user import User
from db.models.vocabulary import VocabularyTerm

__all__ = [
    "AuditEvent",
    "Consent",
    "Contact",
    "CustomFieldDefinition",
    "Contract",
    "Customer",
    "Department",
    "ExportFile",
    "ExportJob",
    "ImportJob",
    "ImportJobIssue",
    "Interaction",
    "Opportunity",
    "OpportunityStageChange",
    "PartnerToken",
    "Payment",
    "PolicyRule",
    "RefreshToken",
    "SensitiveField",
    "Task",
    "StoredFileChunk",
    "Ticket",
    "User",
    "VocabularyTerm",
]
