"""What one principal may do, computed once per policy version, never per row or per value.

The algebra on top of Casbin's rule matching:
- the rows of a resource are the union of its ALLOW scopes minus the union of its DENY scopes;
- a field is readable on a visible row when an ALLOW rule reaching the field holds for the row
  and no DENY rule on the field does. A field that no ALLOW rule names follows the resource's
  rule; a sensitive field (and, for partners, every field) needs a rule that names it — a
  wildcard like `customer.*` does not reach it;
- a scope is read relative to the department in which the role is held: OWN is the principal's
  own rows, DEPARTMENT that department, SUBTREE it and its descendants, ALL everything;
- a partner token is further narrowed to its scopes (`customers:read`, …) and shared customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from casbin.util.builtin_operators import glob_match

from policy.consent import BINDING, Consented, requirements_of
from policy.predicates import (
    ALWAYS,
    NEVER,
    AmongCustomers,
    InDepartments,
    OwnedBy,
    Predicate,
    all_of,
    any_of,
    but_not,
    implies,
)
from policy.principal import Principal
from policy.store import WILDCARDS, PolicySnapshot
from policy.vocabulary import CUSTOMER_CHILDREN, DERIVED, Action, Effect, Resource, Scope

# a partner token's scope names the resource it opens for reading
PARTNER_READ_SCOPES: dict[Resource, str] = {
    Resource.CUSTOMER: "customers:read",
    Resource.CONTACT: "contacts:read",
    Resource.OPPORTUNITY: "opportunities:read",
    Resource.TICKET: "tickets:read",
}


@lru_cache(maxsize=8192)
def _matches(obj: str, pattern: str, by_name: bool) -> bool:
    if by_name and any(w in pattern for w in WILDCARDS):
        return False
    return bool(glob_match(obj, pattern))


@dataclass
class AccessDecisions:
    """Decisions of one principal at one policy version; memoised as they are asked for."""

    principal: Principal
    snapshot: PolicySnapshot
    _rules: list[tuple[str, tuple[str, ...]]] = field(init=False)
    _rows: dict[tuple[Resource, Action], Predicate] = field(default_factory=dict, init=False)
    _fields: dict[tuple[Resource, str, Action], Predicate] = field(default_factory=dict, init=False)
    # things derived from these decisions alone (e.g. built SQL statements), kept as long as
    # the decisions are: per principal and policy version
    derived: dict[object, object] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._rules = self.snapshot.rules_for(self.principal.subject)

    # -- rows ---------------------------------------------------------------------------------

    def rows(self, resource: Resource, action: Action) -> Predicate:
        """Rows of `resource` on which `action` is allowed (customer-row facts)."""
        key = (resource, action)
        if key not in self._rows:
            self._rows[key] = self._compute_rows(resource, action)
        return self._rows[key]

    def can(self, resource: Resource, action: Action) -> bool:
        return not self.rows(resource, action).is_never

    def _compute_rows(self, resource: Resource, action: Action) -> Predicate:
        allowed = self._scopes(resource.value, action, Effect.ALLOW, by_name=False)
        denied = self._scopes(resource.value, action, Effect.DENY, by_name=False)
        rows = but_not(allowed, denied)
        if self.principal.is_partner:
            rows = self._narrow_for_partner(resource, action, rows)
        return rows

    def _narrow_for_partner(self, resource: Resource, action: Action, rows: Predicate) -> Predicate:
        scopes = self.principal.scopes or frozenset()
        needed = PARTNER_READ_SCOPES.get(resource)
        if action is not Action.READ or needed is None or needed not in scopes:
            return NEVER
        shared = self.principal.shared_customer_ids
        if shared is not None and (resource is Resource.CUSTOMER or resource in CUSTOMER_CHILDREN):
            rows = all_of([rows, AmongCustomers(shared)])
        return rows

    # -- fields -------------------------------------------------------------------------------

    def field(self, resource: Resource, name: str, action: Action = Action.READ) -> Predicate:
        """Where `name` may be read (or written) on rows already known to be visible."""
        key = (resource, name, action)
        if key not in self._fields:
            computed = self._compute_field(resource, name, action)
            self._fields[key] = self._with_consent(resource, name, action, computed)
        return self._fields[key]

    def _with_consent(
        self, resource: Resource, name: str, action: Action, allowed: Predicate
    ) -> Predicate:
        """`allowed`, narrowed to rows with the consents the policy requires for the field
        (`policy.consent`); only reads and exports are bound."""
        binding = BINDING.get(action)
        if binding is None or allowed.is_never:
            return allowed
        obj = f"{resource.value}.{name}"
        purposes = sorted(
            {
                requirement.purpose
                for requirement in requirements_of(self.snapshot.lines)
                if requirement.action in binding and _matches(obj, requirement.resource, False)
            }
        )
        if not purposes:
            return allowed
        return all_of([allowed, *(Consented(p) for p in purposes)])

    def _compute_field(self, resource: Resource, name: str, action: Action) -> Predicate:
        rows = self.rows(resource, action)
        if rows.is_never:
            return NEVER
        sources = DERIVED.get((resource, name))
        if sources is not None:
            own = self._compute_own_field(resource, name, action, rows)
            parts = [own, *(self.field(r, f, Action.READ) for r, f in sources)]
            combined = all_of(parts)
            return ALWAYS if implies(rows, combined) else combined
        return self._compute_own_field(resource, name, action, rows)

    def _compute_own_field(
        self, resource: Resource, name: str, action: Action, rows: Predicate
    ) -> Predicate:
        obj = f"{resource.value}.{name}"
        by_name = self.principal.is_partner or self.snapshot.catalog.is_sensitive(resource, name)
        allowed = self._scopes(obj, action, Effect.ALLOW, by_name=by_name)
        if allowed.is_never and not by_name and not self._names_field(obj, action):
            allowed = ALWAYS  # no rule names the field: the resource's rule decides
        denied = self._scopes(obj, action, Effect.DENY, by_name=False)
        if implies(rows, allowed):
            allowed = ALWAYS  # the field rule reaches every visible row: no per-row mask
        if not denied.is_never and not denied.is_always and not _overlaps(rows, denied):
            denied = NEVER
        return but_not(allowed, denied)

    def _names_field(self, obj: str, action: Action) -> bool:
        return any(
            rule[4] == action and rule[6] == Effect.ALLOW and _matches(obj, rule[3], False)
            for _, rule in self._rules
        )

    def matching_rules(self, obj: str, action: Action) -> list[tuple[str, tuple[str, ...]]]:
        """(department the role is held in, rule) pairs reaching `obj` — for explanations."""
        return [
            (domain, rule)
            for domain, rule in self._rules
            if rule[4] == action and _matches(obj, rule[3], False)
        ]

    # -- scopes -------------------------------------------------------------------------------

    def _scopes(self, obj: str, action: Action, effect: Effect, *, by_name: bool) -> Predicate:
        parts = [
            self._scope_predicate(Scope(rule[5]), domain)
            for domain, rule in self._rules
            if rule[4] == action and rule[6] == effect and _matches(obj, rule[3], by_name)
        ]
        return any_of(parts)

    def _scope_predicate(self, scope: Scope, domain: str) -> Predicate:
        if scope is Scope.ALL:
            return ALWAYS
        if scope is Scope.OWN:
            user_id = self.principal.user_id
            return OwnedBy(user_id) if user_id is not None else NEVER
        if not domain.isdigit():
            return NEVER  # a role held everywhere has no department to be relative to
        department = int(domain)
        if scope is Scope.DEPARTMENT:
            return InDepartments(frozenset({department}))
        return InDepartments(self.snapshot.departments.subtree(department))


def _overlaps(rows: Predicate, denied: Predicate) -> bool:
    """Conservatively True; False only when the deny provably misses every visible row."""
    if isinstance(rows, InDepartments) and isinstance(denied, InDepartments):
        return bool(rows.department_ids & denied.department_ids)
    return True


class DecisionCache:
    """Decisions per (principal, policy version), the least recently used dropped when full.

    Decisions of an old policy version are never asked for again, so they fall out first.
    Clearing everything when full (as this did) made every active caller recompute its
    decisions at once, and lose the statements compiled against them (`sqljson`).
    """

    def __init__(self, max_entries: int = 4096) -> None:
        # insertion order is recency: a hit moves its entry to the end
        self._entries: dict[tuple[Principal, int], AccessDecisions] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def for_principal(self, principal: Principal, snapshot: PolicySnapshot) -> AccessDecisions:
        key = (principal, snapshot.version)
        decisions = self._entries.pop(key, None)
        if decisions is None:
            decisions = AccessDecisions(principal, snapshot)
            if len(self._entries) >= self._max:
                del self._entries[next(iter(self._entries))]
        self._entries[key] = decisions
        return decisions
