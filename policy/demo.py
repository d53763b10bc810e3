"""The default policies of the demo organisation (docs/api.md, "Demo data set").

Rules are written against role names with department `*`: a scope such as DEPARTMENT or SUBTREE is
always read relative to the department in which the user holds the role, so one rule serves every
sales team.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from policy.vocabulary import Action, Effect, Scope

PolicyLine = tuple[str, str, str, str, str, str, str]

READ, CREATE, UPDATE, DELETE, EXPORT = (a.value for a in Action)
OWN, DEPARTMENT, SUBTREE, ALL = (s.value for s in Scope)

DEMO_ROLES: tuple[tuple[str, str, str], ...] = (
    # user, role, department (by name)
    ("admin", "admin", "总部"),
    ("alice", "sales_rep", "华东销售"),
    ("bob", "sales_manager", "销售部"),
    ("carol", "service_agent", "客服部"),
    ("dave", "finance", "财务部"),
    ("erin", "compliance_officer", "合规部"),
    ("frank", "sales_rep", "华北销售"),
)
DEMO_PARTNER = "acme-partner"


def _allow(role: str, resource: str, actions: Iterable[str], scope: str) -> list[PolicyLine]:
    return [("p", role, "*", resource, action, scope, Effect.ALLOW.value) for action in actions]


def _deny(role: str, resource: str, actions: Iterable[str], scope: str) -> list[PolicyLine]:
    return [("p", role, "*", resource, action, scope, Effect.DENY.value) for action in actions]


def _directory(role: str) -> list[PolicyLine]:
    """Every staff role may see who owns a record and which department it belongs to."""
    return _allow(role, "user", [READ], ALL) + _allow(role, "department", [READ], ALL)


def demo_rules() -> list[PolicyLine]:
    write = [READ, CREATE, UPDATE]
    rules: list[PolicyLine] = []
    # sales_rep: own customers and everything hanging off them, phone and e-mail included
    rules += _allow("sales_rep", "customer", write, OWN)
    rules += _allow("sales_rep", "customer.{phone,email}", write, OWN)
    for child in ("contact", "opportunity", "ticket", "interaction"):
        rules += _allow("sales_rep", child, write, OWN)
    rules += _allow("sales_rep", "contact.{phone,email}", write, OWN)
    # who owns an account, and which team it counts for, is the manager's call
    rules += _deny("sales_rep", "customer.{owner,department}", [CREATE, UPDATE], ALL)
    rules += _directory("sales_rep")
    # sales_manager: the Sales subtree, contact details only in the manager's own department
    rules += _allow("sales_manager", "customer", [READ, EXPORT], SUBTREE)
    rules += _allow("sales_manager", "customer.{phone,email}", [READ, EXPORT], DEPARTMENT)
    for child in ("contact", "opportunity", "ticket", "interaction"):
        rules += _allow("sales_manager", child, [READ, EXPORT], SUBTREE)
    rules += _directory("sales_manager")
    # service_agent: every customer with phone, contacts and tickets; no money, no opportunities
    rules += _allow("service_agent", "customer", [READ], ALL)
    rules += _allow("service_agent", "customer.phone", [READ], ALL)
    rules += _allow("service_agent", "contact", [READ], ALL)
    rules += _allow("service_agent", "contact.phone", [READ], ALL)
    rules += _allow("service_agent", "ticket", write, ALL)
    rules += _deny("service_agent", "customer.opportunities", [READ], ALL)
    rules += _directory("service_agent")
    # finance: money and credit codes of every customer; no contact details, no contacts
    rules += _allow("finance", "customer", [READ], ALL)
    rules += _allow("finance", "customer.{totalSpend,creditCode}", [READ], ALL)
    rules += _allow("finance", "opportunity", [READ], ALL)
    rules += _deny("finance", "customer.contacts", [READ], ALL)
    rules += _directory("finance")
    # compliance_officer: the audit trail only
    rules += _allow("compliance_officer", "audit", [READ, EXPORT], ALL)
    rules += _directory("compliance_officer")
    # ...and the person's rights: access reports (READ) and erasure (DELETE) of personal data
    rules += _allow("compliance_officer", "privacy", [READ, DELETE], ALL)
    rules += _workflow_rules()
    # admin: organisation, people, policies and tokens; no customer data
    for resource in ("policy", "user", "department", "token", "webhook"):
        rules += _allow("admin", resource, [READ, CREATE, UPDATE, DELETE], ALL)
    # admin keeps the custom fields and vocabularies: no deploy to add a field or a term
    for resource in ("custom_field", "vocabulary"):
        rules += _allow("admin", resource, [READ, CREATE, UPDATE, DELETE], ALL)
    # partner: shared customers' name and industry, their contacts' name and title; a partner
    # sees only fields a rule names (see policy.decisions)
    rules += _allow("partner", "customer", [READ], ALL)
    rules += _allow("partner", "customer.{name,industry,contacts}", [READ], ALL)
    rules += _allow("partner", "contact", [READ], ALL)
    rules += _allow("partner", "contact.{name,title}", [READ], ALL)
    return rules


def _workflow_rules() -> list[PolicyLine]:
    """Tasks, contracts and payments (issue 18): reps their own, managers their subtree with
    the amounts, finance the money of every customer, service the tasks of those it serves."""
    write = [READ, CREATE, UPDATE]
    rules: list[PolicyLine] = []
    for resource in ("task", "contract", "payment"):
        rules += _allow("sales_rep", resource, write, OWN)
        rules += _allow("sales_manager", resource, [*write, EXPORT], SUBTREE)
    rules += _allow("sales_manager", "interaction", [UPDATE], SUBTREE)
    for amount in ("contract.amount", "payment.amount"):  # a rule names one resource
        rules += _allow("sales_manager", amount, [*write, EXPORT], SUBTREE)
        rules += _allow("finance", amount, write, ALL)
    rules += _allow("finance", "contract", [READ], ALL)
    rules += _allow("finance", "payment", write, ALL)
    # the service desk serves every customer (its ticket rule is ALL): its tasks follow that
    rules += _allow("service_agent", "task", write, ALL)
    return rules


def role_line(subject: str, role: str, department: int | str) -> PolicyLine:
    return ("g", subject, role, str(department), "", "", "")


def demo_policy_lines(department_ids: Mapping[str, int]) -> list[PolicyLine]:
    """Rules plus the demo users' role assignments, for the seed to store in `policy_rules`."""
    assignments = [
        role_line(user, role, department_ids[department]) for user, role, department in DEMO_ROLES
    ]
    assignments.append(role_line(f"partner:{DEMO_PARTNER}", "partner", "*"))
    return demo_rules() + assignments
