"""The console in a real browser: Debian's headless Chromium driven by Playwright.

Each test signs in through the form like a person would, leaves a screenshot of every page it
visits in the session's screenshot directory, and checks the page with axe-core (no serious or
critical violation). What the console changes is then checked through the API itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.console.conftest import api_query, api_token
from tests.ops.conftest import PASSWORD, ServerProcess

CHROMIUM = "/usr/bin/chromium"

# on a developer's machine without it, skip; in CI (.ci/run installs it) its absence must fail
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
)

ID_NUMBER_RULE = {
    "role": "sales_rep",
    "department": "*",
    "resource": "customer.idNumber",
    "action": "READ",
    "scope": "OWN",
    "effect": "ALLOW",
}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # root in a container has no user namespace for Chromium's sandbox
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, console_server: ServerProcess) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=console_server.base_url, viewport={"width": 1360, "height": 900}, locale="zh-CN"
    )
    opened = await context.new_page()
    yield opened
    await context.close()


# the WCAG 2.x A and AA rules (labels, contrast, names, structure); axe's best-practice rules
# are left out to keep the suite short
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}


async def look(page: Page, screenshots: Path, name: str, *, check: bool = True) -> None:
    """A full-page screenshot, and axe's verdict: no serious or critical violation.

    `check=False` for a page whose template was already checked in the same state."""
    await page.screenshot(path=screenshots / f"{name}.png", full_page=True)
    if not check:
        return
    results = await Axe().run(page, options=AXE_OPTIONS)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{name}: {bad}"


async def sign_in(page: Page, username: str) -> None:
    await page.goto("/console")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.keyboard.press("Enter")  # the form works from the keyboard alone
    await expect(page.get_by_test_id("signed-in-as")).to_have_text(username)


async def _customer_of(base_url: str, username: str) -> str:
    token = await api_token(base_url, username)
    body = await api_query(base_url, token, "{ customers(first: 1) { nodes { id } } }")
    return str(body["data"]["customers"]["nodes"][0]["id"])


def _forbidden(body: dict[str, Any]) -> set[str]:
    return {
        e["extensions"].get("field")
        for e in body.get("errors", [])
        if e.get("extensions", {}).get("code") == "FORBIDDEN"
    }


async def test_admin_changes_a_rule_after_reading_its_preview(
    page: Page, console_server: ServerProcess, screenshots: Path
) -> None:
    base = console_server.base_url
    await page.goto("/console")
    await look(page, screenshots, "01-sign-in")
    await sign_in(page, "admin")
    await look(page, screenshots, "02-home-admin")

    alice = await api_token(base, "alice")
    read = "query AliceIds { customers { totalCount nodes { idNumber } } }"
    before = await api_query(base, alice, read)
    assert "Customer.idNumber" in _forbidden(before)
    owned = before["data"]["customers"]["totalCount"]

    await page.get_by_role("link", name="Policies").first.click()
    await expect(page.get_by_test_id("matrix")).to_contain_text("sales_manager")
    await look(page, screenshots, "03-policies")

    await page.get_by_label("角色 Role", exact=True).fill("sales_rep")
    await page.get_by_label("资源或字段 Resource or field", exact=True).fill("customer.idNumber")
    await page.get_by_label("操作 Action", exact=True).select_option("READ")
    await page.get_by_label("范围 Scope", exact=True).select_option("OWN")
    await page.get_by_role("button", name="Preview effect").click()
    preview = page.get_by_test_id("preview-table")
    await expect(preview).to_be_visible()
    # htmx (vendored, allowed by the page's CSP) swapped the preview in place
    assert page.url.endswith("/console/policies"), page.url
    await expect(page.get_by_test_id("preview-summary")).to_contain_text("alice, frank")
    alice_row = preview.locator("tr", has_text="alice")
    await expect(alice_row).to_contain_text("idNumber")
    await expect(alice_row).to_contain_text(f"{owned} records")
    await look(page, screenshots, "04-policies-preview")

    # the preview changed nothing: alice is still refused the field
    assert "Customer.idNumber" in _forbidden(await api_query(base, alice, read))

    await page.get_by_role("button", name="Apply this change").click()
    await expect(page.get_by_test_id("applied")).to_be_visible()
    await expect(page.get_by_test_id("matrix")).to_contain_text("customer.idNumber")
    await look(page, screenshots, "05-policies-applied", check=False)

    after = await api_query(base, alice, read)
    assert "Customer.idNumber" not in _forbidden(after), after.get("errors")
    assert after["data"]["customers"]["totalCount"] == owned

    admin = await api_token(base, "admin")
    trail = await api_query(
        base,
        await api_token(base, "erin"),
        """{ auditEvents(first: 20, filter: {actor: "admin", action: "POLICY_CHANGE"}) {
             nodes { operation changes } } }""",
    )
    assert any(e["operation"] == "ConsoleAddPolicy" for e in trail["data"]["auditEvents"]["nodes"])
    undone = await api_query(
        base,
        admin,
        "mutation($rule: PolicyRuleInput!) { removePolicy(rule: $rule) }",
        {"rule": ID_NUMBER_RULE},
    )
    assert undone["data"]["removePolicy"] is True


async def test_admin_explains_a_managers_phone_on_one_record_and_sees_people(
    page: Page, console_server: ServerProcess, screenshots: Path
) -> None:
    customer = await _customer_of(console_server.base_url, "alice")  # 华东销售, under bob's 销售部
    await sign_in(page, "admin")
    await page.get_by_role("link", name="Access").first.click()
    await page.get_by_label("用户 User", exact=True).select_option("bob")
    await page.get_by_label("资源 Resource", exact=True).select_option("customer")
    await page.get_by_label("字段（可选） Field (optional)", exact=True).fill("phone")
    await page.get_by_label(
        "记录 ID（可选，全局 ID） Record id (optional, global id)", exact=True
    ).fill(customer)
    await page.get_by_role("button", name="Explain").click()
    explanation = page.get_by_test_id("explanation")
    await expect(explanation).to_contain_text("SOME")
    await expect(explanation).to_contain_text("sales_manager")
    await expect(page.get_by_test_id("record-answer")).to_contain_text("hidden")
    await look(page, screenshots, "06-access")

    await page.get_by_role("link", name="People").first.click()
    users = page.get_by_test_id("users")
    await expect(users.locator("tr", has_text="erin")).to_contain_text("compliance_officer")
    await look(page, screenshots, "07-users")


async def test_erin_finds_bobs_reads_of_one_customer(
    page: Page, console_server: ServerProcess, screenshots: Path
) -> None:
    base = console_server.base_url
    customer = await _customer_of(base, "bob")
    bob = await api_token(base, "bob")
    await api_query(
        base, bob, "query BobLooks($id: ID!) { customer(id: $id) { name } }", {"id": customer}
    )
    await sign_in(page, "erin")
    await page.get_by_role("link", name="Audit").first.click()
    await look(page, screenshots, "08-audit")

    await page.get_by_label("操作者 Actor", exact=True).fill("bob")
    await page.get_by_label("动作 Action", exact=True).select_option("READ")
    await page.get_by_label("记录 ID Record id", exact=True).fill(customer)
    await page.get_by_role("button", name="Search").click()
    events = page.get_by_test_id("events")
    await expect(events).to_contain_text("BobLooks")
    rows = events.locator("tbody tr")
    assert await rows.count() >= 1
    for text in await rows.all_inner_texts():
        assert "bob" in text and "READ" in text
    await expect(page.get_by_role("heading", name="Record history")).to_be_visible()
    await look(page, screenshots, "09-audit-bobs-reads")

    await page.get_by_role("button", name="Verify now").click()
    await expect(page.get_by_test_id("verify-result")).to_contain_text("Chain intact")
    await look(page, screenshots, "10-audit-verified", check=False)
    await page.get_by_role("button", name="Export these events").click()
    await expect(page.get_by_test_id("export-result")).to_contain_text("Exported")
    await look(page, screenshots, "11-audit-exported", check=False)
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download once").click()
    download = await download_info.value
    exported = await asyncio.to_thread(Path(await download.path()).read_text)
    assert "BobLooks" in exported and '"actor": "bob"' in exported.replace('":"', '": "')


async def test_erin_reads_a_records_history_with_masked_values(
    page: Page, console_server: ServerProcess, screenshots: Path
) -> None:
    base = console_server.base_url
    customer = await _customer_of(base, "alice")
    alice = await api_token(base, "alice")
    changed = await api_query(
        base,
        alice,
        """mutation AliceEdits($id: ID!) { updateCustomer(id: $id,
             input: {industry: "交通运输和物流", phone: "13912345678"}) { industry } }""",
        {"id": customer},
    )
    assert "errors" not in changed, changed
    await sign_in(page, "erin")
    await page.goto(f"/console/audit?resourceId={customer}&action=UPDATE")
    events = page.get_by_test_id("events")
    await expect(events).to_contain_text("AliceEdits")
    await expect(events).to_contain_text("交通运输和物流")  # the new value of a plain field
    await expect(page.locator("body")).not_to_contain_text("13912345678")  # phone stays masked
    await look(page, screenshots, "12-audit-record-history")


async def test_alice_is_refused_the_policy_page(
    page: Page, console_server: ServerProcess, screenshots: Path
) -> None:
    await sign_in(page, "alice")
    await look(page, screenshots, "13-home-alice", check=False)
    answer = await page.goto("/console/policies")
    assert answer is not None and answer.status == 403
    await expect(page.get_by_test_id("refused")).to_be_visible()
    await expect(page.locator("body")).not_to_contain_text("sales_manager")
    await look(page, screenshots, "14-policies-refused-alice")
    # as the page says, the attempt is in the trail, like the API's own refusals
    base = console_server.base_url
    trail = await api_query(
        base,
        await api_token(base, "erin"),
        """{ auditEvents(first: 5, filter: {actor: "alice", action: "DENIED"}) {
             nodes { fields operation } } }""",
    )
    denied = trail["data"]["auditEvents"]["nodes"]
    assert {"fields": ["Query.policies"], "operation": "ConsolePolicies"} in denied, denied
