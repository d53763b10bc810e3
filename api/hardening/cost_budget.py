"""A budget of query cost per principal over time, shared by every process with Redis.

`DOSSIER_MAX_QUERY_COST` bounds one operation; this bounds what one user or partner token
asks for over `DOSSIER_COST_BUDGET_SECONDS`: each operation spends its computed cost (the
same figure `QUERY_TOO_COMPLEX` reports) before it runs, and one that does not fit is
refused with `RATE_LIMITED` and `retryAfter`, spending nothing. The count lives where the
other limits do (`SharedStore`): in Redis when configured, else in this process.

A repeated read that `sqljson.answer_again` answers skips every extension, so the
endpoint calls `answer_again_within_budget` instead: it charges the cost the extension measured
for the same request key, and sends a read that does not fit down the full path, where the
extension refuses it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, RateLimitItemPerSecond

from api.hardening.limits import QueryLimits, QueryLimitsExtension, QueryTooComplexError
from api.hardening.rate_limit import RateKey
from api.hardening.settings import HardeningSettings
from api.hardening.shared_limits import SharedStore
from policy.principal import Principal
from resolvers.errors import DossierError
from sqljson import RawJSON, answer_again

if TYPE_CHECKING:
    from resolvers.context import RequestContext

PAID = "cost_budget_paid"  # context.extras: this request's cost was charged
KNOWN_COSTS = 10_000  # request keys whose cost is remembered for their repeats


class CostBudgetSpentError(DossierError):
    """The principal's query cost budget for the window cannot pay for this operation."""

    code = "RATE_LIMITED"

    def __init__(self, cost: int, budget: int, seconds: int, retry_after: int) -> None:
        super().__init__(
            f"Query cost budget spent: {cost} does not fit in {budget} per {seconds} s",
            cost=cost,
            budget=budget,
            retryAfter=retry_after,
        )


class CostBudget:
    def __init__(self, settings: HardeningSettings, store: SharedStore) -> None:
        self.budget = settings.cost_budget
        self.seconds = settings.cost_budget_seconds
        self._item: RateLimitItem = RateLimitItemPerSecond(self.budget, self.seconds)
        self._store = store
        self._costs: OrderedDict[Hashable, int] = OrderedDict()

    def note_cost(self, request_key: Hashable, cost: int) -> None:
        self._costs[request_key] = cost
        self._costs.move_to_end(request_key)
        while len(self._costs) > KNOWN_COSTS:
            self._costs.popitem(last=False)

    def known_cost(self, request_key: Hashable) -> int | None:
        return self._costs.get(request_key)

    async def spend(self, principal: Principal, cost: int) -> None:
        """Take `cost` from the principal's budget, or raise CostBudgetSpentError."""
        if cost <= 0:
            return
        wait = await self._store.spend(self._item, cost, "cost", RateKey.of(principal).value)
        if wait is not None:
            raise CostBudgetSpentError(cost, self.budget, self.seconds, max(1, round(wait)))


class BudgetedQueryLimitsExtension(QueryLimitsExtension):
    """QueryLimits, then the operation's cost spent from the caller's budget."""

    def __init__(self, limits: QueryLimits, budget: CostBudget) -> None:
        super().__init__(limits)
        self.budget = budget

    async def on_validate(self) -> AsyncIterator[None]:  # type: ignore[override]  # strawberry takes either kind of hook
        context = self.execution_context
        document = context.graphql_document
        principal = getattr(context.context, "principal", None)
        if document is not None:
            try:
                measure = self.limits.check_operation(
                    context.schema._schema,
                    document,
                    context.operation_name,
                    context.variables or {},
                )
            except QueryTooComplexError as refusal:
                self._log(refusal)
                raise
            extras: dict[str, Any] = getattr(context.context, "extras", None) or {}
            key = extras.get("request_key")
            if key is not None:
                self.budget.note_cost(key, measure.cost)
            if isinstance(principal, Principal) and not extras.get(PAID):
                await self.budget.spend(principal, measure.cost)
        yield


async def answer_again_within_budget(
    context: RequestContext, budget: CostBudget | None
) -> RawJSON | None:
    """`answer_again`, after charging the read's cost; None (the full path) when it does not
    fit or its cost is not known yet."""
    if budget is None:
        return await answer_again(context)
    key = context.extras.get("request_key")
    cost = budget.known_cost(key) if key is not None else None
    if cost is None:
        return None
    try:
        await budget.spend(context.principal, cost)
    except CostBudgetSpentError:
        return None  # the extension refuses it, with the error the caller should see
    context.extras[PAID] = True  # should the full path run after all, it is not charged twice
    return await answer_again(context)
