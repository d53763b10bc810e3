"""Generated customers and everything hanging off them, as rows ready for COPY.

Each block of `BLOCK_SIZE` customers draws from its own `random.Random` seeded with
`(seed, block number)`, so the clear-text data is the same for a given N and seed however the
blocks are loaded. Ciphertexts differ between runs (fresh nonces); their plain values do not.

Rows are plain tuples in the column order of `COLUMNS`: building dicts or ORM objects for a
million rows would cost more than the database spends storing them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import api.seed.vocabulary as v
from api.seed.identifiers import credit_code, id_number, mobile_e164
from db.crypto import FieldCipher
from validation.email import email_lookup_form

BLOCK_SIZE = 2_000
CONTACTS_PER_CUSTOMER = 5
OPPORTUNITIES_PER_CUSTOMER = 3
TICKETS_PER_CUSTOMER = 2
HISTORY_DAYS = 3 * 365

COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "id", "name", "kind", "industry", "region", "level", "source", "tags", "credit_code",
        "phone_enc", "phone_bidx", "email_enc", "email_bidx", "id_number_enc", "id_number_bidx",
        "address_enc", "address_bidx",
        "total_spend", "owner_id", "department_id", "last_interaction_at", "created_at",
        "updated_at", "data_key",
    ),
    "contacts": (
        "id", "customer_id", "name", "title", "phone_enc", "phone_bidx", "email_enc", "email_bidx",
        "is_decision_maker", "created_at", "updated_at", "data_key",
    ),
    "opportunities": (
        "id", "customer_id", "name", "stage", "amount", "expected_close_date", "owner_id",
        "created_at", "updated_at",
    ),
    "opportunity_stage_changes": ("id", "opportunity_id", "from_stage", "to_stage", "at", "actor"),
    "tickets": (
        "id", "customer_id", "title", "status", "priority", "assignee_id", "opened_at",
        "resolved_at", "satisfaction", "created_at", "updated_at",
    ),
    "interactions": (
        "id", "customer_id", "channel", "summary", "occurred_at", "author_id",
        "next_follow_up_on", "created_at",
    ),
    "contracts": (
        "id", "customer_id", "title", "amount", "starts_on", "ends_on", "status", "owner_id",
        "created_at", "updated_at",
    ),
    "payments": (
        "id", "contract_id", "customer_id", "amount", "due_on", "paid_on", "status",
        "created_at", "updated_at",
    ),
    "tasks": (
        "id", "title", "kind", "status", "due_at", "assignee_id", "customer_id", "source_id",
        "completed_at", "created_at", "updated_at",
    ),
}  # fmt: skip

# tables in foreign-key order: a child is loaded after its parent
TABLES = tuple(COLUMNS)

LEVELS = ("A", "B", "C")
LEVEL_WEIGHTS = (10, 30, 60)
FUNNEL = ("LEAD", "QUALIFIED", "PROPOSAL", "NEGOTIATION")
STAGES = (*FUNNEL, "WON", "LOST")
STAGE_WEIGHTS = (25, 18, 15, 10, 20, 12)
TICKET_STATUSES = ("OPEN", "IN_PROGRESS", "RESOLVED", "CLOSED")
TICKET_STATUS_WEIGHTS = (15, 10, 25, 50)
PRIORITIES = ("LOW", "NORMAL", "HIGH", "URGENT")
PRIORITY_WEIGHTS = (20, 55, 20, 5)
CHANNELS = ("CALL", "VISIT", "EMAIL", "WECHAT", "MEETING")
SPEND_CENTS = {"A": (50_000_000, 800_000_000), "B": (5_000_000, 60_000_000), "C": (0, 6_000_000)}
# contracts per customer by level, and how many instalments a contract is paid in
CONTRACTS_PER_LEVEL = {"A": (1, 2, 3), "B": (0, 0, 1, 1, 2), "C": (0, 0, 0, 1)}
INSTALMENTS = (1, 2, 2, 3, 4)
CONTRACT_TOPICS = ("年度服务合同", "软件许可合同", "采购框架协议", "技术支持合同", "实施服务合同")
EAST_REGIONS = tuple(r for r in v.REGIONS if r.team == "east")
NORTH_REGIONS = tuple(r for r in v.REGIONS if r.team == "north")


@dataclass(frozen=True, kw_only=True)
class SalesForce:
    """Who owns which customers: key accounts sit in Sales itself, the rest in a region team."""

    sales_department: int
    east_department: int
    north_department: int
    key_account_owner: int
    east_reps: Sequence[int]
    north_reps: Sequence[int]
    service_agents: Sequence[int]
    usernames: dict[int, str]


@dataclass
class Block:
    """The rows of one block of customers, per table, in `COLUMNS` order."""

    rows: dict[str, list[tuple[object, ...]]] = field(
        default_factory=lambda: {table: [] for table in TABLES}
    )

    def count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


@dataclass
class _Ids:
    """Next id per table: rows carry explicit ids so children can point at their parents."""

    next: dict[str, int]

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


class CustomerGenerator:
    """Makes blocks of customers with 5 contacts, 3 opportunities and 2 tickets each."""

    def __init__(self, *, cipher: FieldCipher, force: SalesForce, seed: int, now: datetime) -> None:
        self._cipher = cipher
        self._force = force
        self._seed = seed
        self._now = now

    def blocks(self, customers: int, first_ids: dict[str, int]) -> Iterator[Block]:
        """Yield blocks covering `customers` customers; ids start at `first_ids[table]`."""
        ids = _Ids(dict(first_ids))
        for number, start in enumerate(range(0, customers, BLOCK_SIZE)):
            # reproducible demo data, not secrets: a seeded PRNG is the point
            rng = random.Random(f"dossier-seed:{self._seed}:{number}")  # noqa: S311
            # the sales workflow (issue 18) draws from a generator of its own, so the records
            # that existed before it are the same as they were for a given N and seed
            workflow = random.Random(f"dossier-seed-workflow:{self._seed}:{number}")  # noqa: S311
            block = Block()
            for _ in range(min(BLOCK_SIZE, customers - start)):
                self._customer(rng, ids, block)
                self._workflow(workflow, ids, block)
            yield block

    # -- one customer and its children ------------------------------------------------------

    def _customer(self, rng: random.Random, ids: _Ids, block: Block) -> None:
        force, cipher, now = self._force, self._cipher, self._now
        customer_id = ids.take("customers")
        level = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
        if level == "A":
            region = rng.choice(v.REGIONS)
            department, owner = force.sales_department, force.key_account_owner
        elif rng.random() < 0.55:
            region = rng.choice(EAST_REGIONS)
            department, owner = force.east_department, rng.choice(force.east_reps)
        else:
            region = rng.choice(NORTH_REGIONS)
            department, owner = force.north_department, rng.choice(force.north_reps)
        city, division = rng.choice(region.cities)

        is_person = rng.random() < 0.12
        english = not is_person and rng.random() < 0.1
        industry: str | None
        if is_person:
            name, local = chinese_person(rng)
            industry = None  # an individual is not filed under a trade
            domain = rng.choice(v.PERSONAL_MAIL_DOMAINS)
            email = f"{local}{rng.randrange(10, 9999)}@{domain}"
            code = None
            id_clear: str | None = id_number(rng, division)
        else:
            if english:
                word = rng.choice(v.EN_COMPANY_WORDS)
                kind_word, industry = rng.choice(v.EN_COMPANY_KINDS)
                name = f"{word} {kind_word} {rng.choice(v.EN_COMPANY_FORMS)}"
                slug = f"{word}-{kind_word}".lower().replace(" ", "")
                domain = f"{slug}.com"
            else:
                (c1, p1), (c2, p2) = rng.sample(v.BRAND_SYLLABLES, 2)
                trade, trade_slug, industry = rng.choice(v.TRADES)
                name = f"{city}{c1}{c2}{trade}{rng.choice(v.COMPANY_FORMS)}"
                domain = f"{p1}{p2}{trade_slug}.{rng.choice(('com', 'com.cn', 'cn'))}"
            email = f"{rng.choice(('info', 'sales', 'contact', 'service'))}@{domain}"
            code = credit_code(rng, division)
            id_clear = None

        phone = mobile_e164(rng)
        created = now - timedelta(seconds=rng.randrange(HISTORY_DAYS * 86_400))
        updated = created + (now - created) * rng.random()
        lo, hi = SPEND_CENTS[level]
        spend = Decimal(rng.randrange(lo, hi + 1)) / 100
        tags = rng.sample(v.TAGS, rng.choice((0, 1, 1, 2, 3)))
        if english:
            tags.append(v.FOREIGN_TAG)
        elif not is_person and rng.random() < 0.3:
            tags.append(rng.choice(v.OWNERSHIP_TAGS))
        address = (
            f"{region.name}{city}{rng.choice(v.STREETS)}{rng.randrange(1, 2000)}号"
            if region.name != city
            else f"{city}{rng.choice(v.STREETS)}{rng.randrange(1, 2000)}号"
        )
        source = rng.choices(v.SOURCES, v.SOURCE_WEIGHTS)[0]

        last_interaction = self._interactions(rng, ids, block, customer_id, owner, created)
        if last_interaction is not None and last_interaction > updated:
            updated = last_interaction
        data_key = cipher.new_data_key()  # envelope encryption: one key per customer
        block.rows["customers"].append(
            (
                customer_id, name, "PERSON" if is_person else "COMPANY", industry, region.name,
                level, source, tags, code,
                cipher.encrypt("customer.phone", phone, data_key),
                cipher.blind_index("customer.phone", phone),
                cipher.encrypt("customer.email", email, data_key),
                cipher.blind_index("customer.email", email_lookup_form(email) if email else None),
                cipher.encrypt("customer.id_number", id_clear, data_key),
                cipher.blind_index("customer.id_number", id_clear),
                cipher.encrypt("customer.address", address, data_key),
                cipher.blind_index("customer.address", address),
                spend, owner, department, last_interaction, created, updated, data_key,
            )
        )  # fmt: skip
        self._contacts(rng, ids, block, customer_id, domain, english, is_person, created, data_key)
        self._opportunities(rng, ids, block, customer_id, owner, level, created)
        self._tickets(rng, ids, block, customer_id, created)

    def _workflow(self, rng: random.Random, ids: _Ids, block: Block) -> None:
        """The contracts, payments and tasks of the customer `_customer` just made.

        Tasks are what the reminders would have created by now (`resolvers.reminders`):
        one per follow-up date, renewal and overdue payment, done when long past, plus a few
        typed in by hand; reminder tasks name their source, as the scheduler's do.
        """
        customer: tuple[Any, ...] = block.rows["customers"][-1]
        column = COLUMNS["customers"].index
        customer_id, owner = customer[0], customer[column("owner_id")]
        level: str = customer[column("level")]
        created: datetime = customer[column("created_at")]
        now, today = self._now, self._now.date()
        tasks = block.rows["tasks"]

        def task(title: str, kind: str, due: date, source: int | None) -> None:
            due_at = datetime.combine(due, datetime.min.time(), now.tzinfo)
            done = due < today - timedelta(days=3) and rng.random() < 0.9
            status = "DONE" if done else "OPEN"
            completed = None
            if done:
                completed = min(due_at + timedelta(hours=rng.randrange(1, 72)), now)
            made = min(due_at, now)
            tasks.append((ids.take("tasks"), title, kind, status, due_at, owner, customer_id,
                          source, completed, made, completed or made))  # fmt: skip

        interactions: list[tuple[Any, ...]] = block.rows["interactions"]
        for row in interactions[::-1]:
            if row[1] != customer_id:
                break
            if row[6] is not None and row[6] <= today:
                task(f"跟进 {customer[1]}"[:300], "FOLLOW_UP", row[6], row[0])
        spend_scale = {"A": 3_000_000, "B": 400_000, "C": 60_000}[level]
        for _ in range(rng.choice(CONTRACTS_PER_LEVEL[level])):
            contract_id = ids.take("contracts")
            starts = (created + (now - created) * rng.random()).date()
            ends = starts + timedelta(days=rng.choice((180, 365, 365, 730)))
            status = "ACTIVE" if ends >= today else "EXPIRED"
            if rng.random() < 0.05:
                status = "TERMINATED"
            amount = Decimal(rng.randrange(spend_scale // 20, spend_scale)).quantize(Decimal(1))
            signed_at = datetime.combine(starts, datetime.min.time(), now.tzinfo)
            block.rows["contracts"].append(
                (contract_id, customer_id, rng.choice(CONTRACT_TOPICS), amount, starts, ends,
                 status, owner, min(signed_at, now), min(signed_at, now))
            )  # fmt: skip
            if status == "ACTIVE" and ends <= today + timedelta(days=30):
                task("合同到期 Renew", "CONTRACT_RENEWAL", ends, contract_id)
            parts = rng.choice(INSTALMENTS)
            share = (amount / parts).quantize(Decimal("0.01"))
            for index in range(parts):
                due = starts + timedelta(days=(ends - starts).days * index // parts)
                paid = None
                if due <= today and rng.random() < 0.85:
                    paid = min(due + timedelta(days=rng.randrange(-5, 40)), today)
                state = "PAID" if paid else ("OVERDUE" if due < today else "PLANNED")
                at = min(datetime.combine(due, datetime.min.time(), now.tzinfo), now)
                payment_id = ids.take("payments")
                block.rows["payments"].append(
                    (payment_id, contract_id, customer_id, share, due, paid, state, at, at)
                )  # fmt: skip
                if state == "OVERDUE":
                    task("回款逾期 Payment overdue", "PAYMENT_DUE", due, payment_id)
        if rng.random() < 0.1:
            due = today + timedelta(days=rng.randrange(-10, 20))
            task(rng.choice(("准备报价单", "安排演示", "发送合同草稿")), "CUSTOM", due, None)

    def _contacts(
        self,
        rng: random.Random,
        ids: _Ids,
        block: Block,
        customer_id: int,
        domain: str,
        english: bool,
        is_person: bool,
        created: datetime,
        data_key: str,
    ) -> None:
        cipher = self._cipher
        for index in range(CONTACTS_PER_CUSTOMER):
            if english and rng.random() < 0.7:
                first, last = rng.choice(v.EN_FIRST_NAMES), rng.choice(v.EN_LAST_NAMES)
                name, local = f"{first} {last}", f"{first}.{last}".lower()
                title = rng.choice(v.CONTACT_TITLES_EN)
            else:
                name, local = chinese_person(rng)
                title = rng.choice(v.CONTACT_TITLES_CN)
            if is_person:  # an individual's contacts are family or assistants with own mail
                email = f"{local}{rng.randrange(10, 999)}@{rng.choice(v.PERSONAL_MAIL_DOMAINS)}"
            else:
                email = f"{local}@{domain}"
            phone = mobile_e164(rng)
            decides = index == 0 or (title in v.DECISION_TITLES and rng.random() < 0.5)
            added = created + timedelta(days=rng.randrange(0, 60) if index else 0)
            block.rows["contacts"].append(
                (
                    ids.take("contacts"), customer_id, name, title,
                    cipher.encrypt("contact.phone", phone, data_key),
                    cipher.blind_index("contact.phone", phone),
                    cipher.encrypt("contact.email", email, data_key),
                    cipher.blind_index("contact.email", email_lookup_form(email)),
                    decides, min(added, self._now), min(added, self._now), data_key,
                )
            )  # fmt: skip

    def _opportunities(
        self,
        rng: random.Random,
        ids: _Ids,
        block: Block,
        customer_id: int,
        owner: int,
        level: str,
        created: datetime,
    ) -> None:
        now, actor = self._now, self._force.usernames[owner]
        scale = {"A": 2_000_000, "B": 300_000, "C": 50_000}[level]
        changes = block.rows["opportunity_stage_changes"]
        for _ in range(OPPORTUNITIES_PER_CUSTOMER):
            opportunity_id = ids.take("opportunities")
            stage = rng.choices(STAGES, STAGE_WEIGHTS)[0]
            opened = created + (now - created) * rng.random()
            amount = Decimal(rng.randrange(scale // 20, scale)) if rng.random() < 0.9 else None
            # the funnel walked so far: WON passes every step, LOST drops out somewhere
            if stage == "WON":
                path = [*FUNNEL, "WON"]
            elif stage == "LOST":
                path = [*FUNNEL[: rng.randrange(1, len(FUNNEL) + 1)], "LOST"]
            else:
                path = list(FUNNEL[: FUNNEL.index(stage) + 1])
            at = opened
            for before, after in zip(path, path[1:], strict=False):
                at = at + (now - at) * rng.random() * 0.5
                changes.append((ids.take("opportunity_stage_changes"), opportunity_id, before,
                                after, at, actor))  # fmt: skip
            closes = (at + timedelta(days=rng.randrange(0, 120))).date()
            block.rows["opportunities"].append(
                (
                    opportunity_id, customer_id, f"{rng.choice(v.OPPORTUNITY_TOPICS)} {opened:%Y}",
                    stage, amount, closes, owner, opened, at,
                )
            )  # fmt: skip

    def _tickets(
        self, rng: random.Random, ids: _Ids, block: Block, customer_id: int, created: datetime
    ) -> None:
        now, agents = self._now, self._force.service_agents
        for _ in range(TICKETS_PER_CUSTOMER):
            status = rng.choices(TICKET_STATUSES, TICKET_STATUS_WEIGHTS)[0]
            opened = created + (now - created) * rng.random()
            assignee = None if status == "OPEN" and rng.random() < 0.5 else rng.choice(agents)
            resolved = satisfaction = None
            if status in ("RESOLVED", "CLOSED"):
                resolved = min(opened + timedelta(minutes=rng.randrange(10, 14 * 1440)), now)
                satisfaction = rng.choices((1, 2, 3, 4, 5), (3, 5, 15, 40, 37))[0]
            block.rows["tickets"].append(
                (
                    ids.take("tickets"), customer_id, rng.choice(v.TICKET_TITLES), status,
                    rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0], assignee, opened, resolved,
                    satisfaction, opened, resolved or opened,
                )
            )  # fmt: skip

    def _interactions(
        self,
        rng: random.Random,
        ids: _Ids,
        block: Block,
        customer_id: int,
        owner: int,
        created: datetime,
    ) -> datetime | None:
        now, last = self._now, None
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            at = created + (now - created) * rng.random()
            follow_up: date | None = None
            if rng.random() < 0.3:
                follow_up = (at + timedelta(days=rng.randrange(1, 45))).date()
            block.rows["interactions"].append(
                (
                    ids.take("interactions"), customer_id, rng.choice(CHANNELS),
                    rng.choice(v.INTERACTION_SUMMARIES), at, owner, follow_up, at,
                )
            )  # fmt: skip
            last = at if last is None or at > last else last
        return last


def chinese_person(rng: random.Random) -> tuple[str, str]:
    """A Chinese full name and the pinyin local part of an e-mail address for it."""
    surname, surname_pinyin = rng.choice(v.SURNAMES)
    given = rng.sample(v.GIVEN_NAME_CHARS, rng.choice((1, 2, 2, 2)))
    name = surname + "".join(char for char, _ in given)
    local = "".join(pinyin for _, pinyin in given) + "." + surname_pinyin
    return name, local
