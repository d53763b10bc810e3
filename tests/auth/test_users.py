"""identity.users: typed errors callers map to GraphQL codes, and nothing half-written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.state import AppState
from db.models import Department, User
from identity.errors import (
    DepartmentNotFoundError,
    InvalidUsernameError,
    UserExistsError,
    UserNotFoundError,
    WeakPasswordError,
)
from identity.users import create_user, deactivate_user, revoke_user_tokens, set_password
from tests.auth.conftest import PASSWORD, MakeUser


async def test_duplicate_username_differing_only_in_case_is_refused(
    state: AppState, make_user: MakeUser, department: Department
) -> None:
    existing = await make_user()
    async with state.sessions() as session, session.begin():
        with pytest.raises(UserExistsError):
            await create_user(
                session,
                username=existing.username.upper(),
                password=PASSWORD,
                display_name=None,
                department_id=department.id,
            )
        # the caller's transaction is still usable after the refusal
        assert await session.scalar(select(User.id).where(User.id == existing.id)) == existing.id


@pytest.mark.parametrize(
    ("username", "password", "error"),
    [
        ("fine-name", "short", WeakPasswordError),
        ("same-as-password", "same-as-password", WeakPasswordError),
        ("has space", PASSWORD, InvalidUsernameError),
        ("", PASSWORD, InvalidUsernameError),
    ],
)
async def test_bad_user_input_is_refused_with_the_field(
    state: AppState, department: Department, username: str, password: str, error: type[Exception]
) -> None:
    async with state.sessions() as session, session.begin():
        with pytest.raises(error):
            await create_user(
                session,
                username=username,
                password=password,
                display_name=None,
                department_id=department.id,
            )


async def test_unknown_department_is_refused(state: AppState) -> None:
    async with state.sessions() as session, session.begin():
        with pytest.raises(DepartmentNotFoundError) as raised:
            await create_user(
                session,
                username="lost-soul",
                password=PASSWORD,
                display_name=None,
                department_id=987_654_321,
            )
    assert raised.value.field == "departmentId"


async def test_unknown_user_id_raises_not_found(state: AppState) -> None:
    for operation in (deactivate_user, revoke_user_tokens):
        async with state.sessions() as session, session.begin():
            with pytest.raises(UserNotFoundError):
                await operation(session, 987_654_321)
    async with state.sessions() as session, session.begin():
        with pytest.raises(UserNotFoundError):
            await set_password(session, 987_654_321, PASSWORD)


async def test_revocation_bumps_the_token_version(state: AppState, make_user: MakeUser) -> None:
    user = await make_user()
    async with state.sessions() as session, session.begin():
        await revoke_user_tokens(session, user.id)
        changed = await deactivate_user(session, user.id)
        assert changed.token_version == user.token_version + 2
        assert not changed.is_active
