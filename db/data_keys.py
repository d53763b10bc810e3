"""Which data key a contact's personal values are sealed with: a copy of its customer's.

A contact carries its own copy of the wrapped key so that its values stay readable wherever the
row goes (a merge moves contacts to another customer) and a read needs no join; erasure removes
every copy (`privacy.erasure`). A customer without a key yet gets one here, on the
first sealed value of any of its records.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.crypto import FieldCipher
from db.models import Customer as CustomerRow


def own_data_key(customer: CustomerRow, cipher: FieldCipher) -> str:
    """The customer's wrapped data key, made (and set on the row, flushed with it) if missing."""
    if customer.data_key is None:
        customer.data_key = cipher.new_data_key()
    return customer.data_key


async def contact_data_key(
    session: AsyncSession, cipher: FieldCipher, contact: Any, customer: CustomerRow | None = None
) -> None:
    """Give `contact` its customer's data key when it has none (one statement at most)."""
    if contact.data_key is not None:
        return
    if customer is None:
        customer = (
            await session.execute(select(CustomerRow).where(CustomerRow.id == contact.customer_id))
        ).scalar_one()
    contact.data_key = own_data_key(customer, cipher)
