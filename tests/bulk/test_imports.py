"""importCustomers over the GraphQL multipart request: reports, batches, jobs, bad files."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from openpyxl import Workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.app import create_app
from api.settings import Settings
from bulk.settings import BulkSettings
from tests.bulk.conftest import (
    GraphQLClient,
    count_customers,
    csv_bytes,
    csv_rows,
    download,
    upload,
)
from tests.graphql.conftest import error_codes, forbidden_fields

HEADER = ["客户名称", "类型", "行业", "地区", "手机", "邮箱", "标签", "备注"]
JOB = """query($id: ID!) { importJob(id: $id) { status processedRows writtenRows totalRows
  rowsPerSecond etaSeconds issues { row status } } }"""
REPORT = "mutation($id: ID!) { importReport(id: $id) { url rowCount } }"


async def _alice_email(gql: GraphQLClient) -> str:
    body = await gql.query("alice", "{ customers(first: 50) { nodes { email } } }")
    return next(n["email"] for n in body["data"]["customers"]["nodes"] if n["email"])


def _rows(prefix: str, existing_email: str) -> list[list[str]]:
    return [
        HEADER,
        [f"{prefix}甲科技有限公司", "公司", "互联网", "上海", "13900000001", "", "新客户", "x"],
        [f"{prefix}乙", "个人", "", "", "12345", "", "", ""],  # bad phone
        [f"{prefix}丙科技有限公司", "公司", "互联网", "北京", "13900000001", "", "", ""],  # dup 2
        [f"{prefix}丁贸易有限公司", "公司", "零售", "BJ", "", existing_email, "", ""],  # dup db
        [f"{prefix}戊", "个人", "", "", "", f"{prefix.lower()}wu@example.com", "", ""],
    ]


async def test_dry_run_reports_accepted_rejected_and_duplicates_and_writes_nothing(
    gql, demo_engine: AsyncEngine
):
    prefix = "试算"
    content = csv_bytes(_rows(prefix, await _alice_email(gql)))
    response = await upload(gql, "alice", content, "客户.csv")
    job = response.json()["data"]["importCustomers"]

    assert job["status"] == "DONE" and job["dryRun"] is True
    assert (job["totalRows"], job["acceptedRows"], job["rejectedRows"]) == (5, 2, 1)
    assert (job["duplicateRows"], job["writtenRows"]) == (2, 0)
    assert job["ignoredColumns"] == ["备注"]
    issues = {(i["row"], i["status"], i["field"]) for i in job["issues"]}
    assert issues == {(3, "rejected", "phone"), (4, "duplicate", "phone"),
                      (5, "duplicate", "email")}  # fmt: skip
    by_row = {i["row"]: i for i in job["issues"]}
    assert by_row[4]["duplicateOf"] == "row 2"
    assert by_row[5]["duplicateOf"].startswith("Q3VzdG9tZXI")  # a customer alice can see
    assert await count_customers(demo_engine, prefix) == 0


async def test_real_run_writes_accepted_rows_with_an_audit_event_per_batch(
    gql, demo_engine: AsyncEngine
):
    prefix = "实导"
    content = csv_bytes(_rows(prefix, await _alice_email(gql)))
    job = (await upload(gql, "alice", content, "客户.csv", dry_run=False)).json()
    job = job["data"]["importCustomers"]
    assert (job["status"], job["writtenRows"], job["acceptedRows"]) == ("DONE", 2, 2)

    async with demo_engine.connect() as connection:
        written = (
            await connection.execute(
                text(
                    "SELECT c.id, c.region, c.tags, u.username FROM customers c "
                    "JOIN users u ON u.id = c.owner_id WHERE c.name LIKE :p ORDER BY c.id"
                ),
                {"p": f"{prefix}%"},
            )
        ).all()
        events = (
            await connection.execute(
                text(
                    "SELECT actor, resource_ids, changes FROM audit_events "
                    "WHERE action = 'IMPORT' AND changes->>'importJob' = :job"
                ),
                {"job": job["id"]},
            )
        ).all()
    assert [(r.region, r.tags, r.username) for r in written] == [
        ("上海", ["新客户"], "alice"),
        (None, [], "alice"),
    ]
    assert len(events) == 1
    assert events[0].actor == "alice"
    assert sorted(events[0].resource_ids) == sorted(str(r.id) for r in written)

    polled = await gql.query("alice", JOB, {"id": job["id"]})
    assert polled["data"]["importJob"]["status"] == "DONE"
    assert (await gql.query("bob", JOB, {"id": job["id"]}))["data"]["importJob"] is None

    report = (await gql.query("alice", REPORT, {"id": job["id"]}))["data"]["importReport"]
    lines = csv_rows((await download(gql, "alice", report["url"])).content)
    assert [(line["row"], line["status"]) for line in lines] == [
        ("3", "rejected"), ("4", "duplicate"), ("5", "duplicate"),
    ]  # fmt: skip


async def test_gbk_csv_is_detected_and_read(gql, demo_engine: AsyncEngine):
    rows = [["名称", "行业", "地区", "电话"],
            ["杭州编码测试网络科技有限公司", "互联网", "浙江", "0571-88888888"],
            ["宁波编码测试贸易有限公司", "零售", "浙江", "13811112222"]]  # fmt: skip
    response = await upload(gql, "alice", csv_bytes(rows, "gbk"), "gbk.csv", dry_run=False)
    job = response.json()["data"]["importCustomers"]
    assert (job["writtenRows"], job["rejectedRows"]) == (2, 0), job
    assert await count_customers(demo_engine, "杭州编码测试") == 1


async def test_xlsx_upload_with_typed_cells(gql, demo_engine: AsyncEngine):
    book = Workbook()
    sheet = book.active
    sheet.append(["Name", "Kind", "Phone", "Email", "Level"])
    sheet.append(["表格导入个人甲", "PERSON", 13822223333, None, "潜力"])
    buffer = io.BytesIO()
    book.save(buffer)
    response = await upload(gql, "alice", buffer.getvalue(), "people.xlsx", dry_run=False)
    job = response.json()["data"]["importCustomers"]
    assert job["writtenRows"] == 1, job
    async with demo_engine.connect() as connection:
        level = await connection.execute(
            text("SELECT level FROM customers WHERE name = '表格导入个人甲'")
        )
        assert level.scalar_one() == "B"


async def test_explicit_mapping_wins_over_header_names(gql):
    rows = [["公司全称", "行业", "地区"], ["映射测试科技有限公司", "互联网", "上海"]]
    response = await upload(gql, "alice", csv_bytes(rows), "m.csv", mapping={"公司全称": "name"})
    job = response.json()["data"]["importCustomers"]
    assert job["acceptedRows"] == 1, job


BAD_FILES = {
    "MISSING_COLUMNS": (csv_bytes([["行业", "地区"], ["互联网", "上海"]]), "no-name.csv"),
    "BINARY": (bytes(range(256)) * 64, "random.csv"),
    "ZIP_AS_CSV": (b"PK\x03\x04" + b"\x00" * 200, "workbook.csv"),
    "NOT_XLSX": (b"name\nfoo\n", "fake.xlsx"),
    "UNSUPPORTED": (b"name\nfoo\n", "notes.txt"),
    "EMPTY": (b"", "empty.csv"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
async def test_bad_files_get_a_clear_error_and_leave_the_database_untouched(
    gql, demo_engine: AsyncEngine, case: str
):
    content, name = BAD_FILES[case]
    before = await count_customers(demo_engine, "")
    body = (await upload(gql, "alice", content, name, dry_run=False)).json()
    assert body["data"]["importCustomers"] is None
    assert error_codes(body) == ["BAD_USER_INPUT"]
    problem = body["errors"][0]["extensions"]["problem"]
    assert problem == {"ZIP_AS_CSV": "BINARY"}.get(case, case)
    assert await count_customers(demo_engine, "") == before


async def test_a_broken_encoding_mid_file_is_refused_before_any_row(gql, demo_engine):
    good = csv_bytes([["名称", "行业", "地区"]] + [[f"编码中断{i}有限公司", "零售", "上海"]
                                                 for i in range(50)])  # fmt: skip
    content = good + "坏行有限公司,零售,上海\n".encode("gbk") + b"\xff\xfe\xfa\n"
    body = (await upload(gql, "alice", content, "mixed.csv", dry_run=False)).json()
    assert body["errors"][0]["extensions"]["problem"] == "ENCODING", body
    assert await count_customers(demo_engine, "编码中断") == 0


async def test_importers_need_create_on_customers_and_on_each_column(gql):
    rows = [["名称", "行业", "地区"], ["权限测试有限公司", "零售", "上海"]]
    body = (await upload(gql, "bob", csv_bytes(rows), "a.csv")).json()
    assert forbidden_fields(body) == {"Mutation.importCustomers"}

    rows = [["名称", "行业", "地区", "统一社会信用代码"], ["权限测试有限公司", "零售", "上海", ""]]
    body = (await upload(gql, "alice", csv_bytes(rows), "a.csv")).json()
    assert forbidden_fields(body) == {"Customer.creditCode"}


async def test_uploads_need_the_csrf_header(gql):
    rows = [["名称"], ["头部测试"]]
    response = await upload(gql, "alice", csv_bytes(rows), "a.csv", marked=False)
    assert response.status_code == 400
    assert "X-Dossier-Upload" in response.text or "x-dossier-upload" in response.text


@pytest.fixture
async def small_upload_app(demo_settings: Settings, demo) -> AsyncIterator[Starlette]:
    settings = dataclasses.replace(demo_settings, bulk=BulkSettings(max_upload_bytes=1024 * 1024))
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_an_oversized_upload_is_refused_without_reading_it_all(
    small_upload_app: Starlette, gql: GraphQLClient, demo_engine: AsyncEngine
):
    token = await gql.token("alice")
    operations = {"query": "mutation($u: Upload!) { importCustomers(upload: $u) { id } }",
                  "variables": {"u": None}}  # fmt: skip
    boundary = "bulkboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        f"{orjson.dumps(operations).decode()}\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="map"\r\n\r\n{"0": ["variables.u"]}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="0"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nname\n"
    ).encode()
    sent = 0

    async def body() -> AsyncIterator[bytes]:  # 1 GB, chunked: no Content-Length to trust
        nonlocal sent
        yield head
        chunk = b"x" * (1024 * 1024)
        for _ in range(1024):
            sent += len(chunk)
            yield chunk

    transport = httpx.ASGITransport(app=small_upload_app, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.post(
            "/graphql",
            content=body(),
            headers={
                "Authorization": f"Bearer {token}",
                "X-Dossier-Upload": "1",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert sent < 16 * 1024 * 1024  # stopped long before the gigabyte


async def test_a_long_import_answers_with_a_job_whose_progress_can_be_polled(
    demo_settings: Settings, demo, gql: GraphQLClient, demo_engine: AsyncEngine
):
    settings = dataclasses.replace(
        demo_settings, bulk=BulkSettings(batch_size=50, inline_wait_seconds=0.0)
    )
    application = create_app(settings)
    rows = [["名称", "行业", "地区"]] + [[f"进度测试{i:04d}号有限公司", "零售", "上海"]
                                        for i in range(400)]  # fmt: skip
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50003))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            client = GraphQLClient(http, gql.tokens)
            started = await upload(client, "alice", csv_bytes(rows), "p.csv", dry_run=False)
            job = started.json()["data"]["importCustomers"]
            assert job["status"] == "RUNNING"
            seen = []
            for _ in range(200):
                # any process can answer: ask through the shared demo app, not the one importing
                polled = (await gql.query("alice", JOB, {"id": job["id"]}))["data"]["importJob"]
                seen.append(polled["processedRows"])
                if polled["status"] == "DONE":
                    break
                await asyncio.sleep(0.05)
            await application.state.dossier.extras["bulk"].drain()
    assert polled["status"] == "DONE" and polled["writtenRows"] == 400
    assert polled["totalRows"] == 400 and polled["rowsPerSecond"] > 0
    assert seen == sorted(seen)
    assert await count_customers(demo_engine, "进度测试") == 400
