"""The credits ledger: the only module that writes a key's credit columns.

A job is charged when it is queued (in the transaction that queues it) and refunded when it fails
or is canceled (in the transaction that ends it). `credits_granted` NULL means unlimited.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, case, func, select, update

from roomrender.db.tables import api_keys


@dataclass(frozen=True)
class Balance:
    granted: int | None
    used: int

    @property
    def available(self) -> int | None:
        return None if self.granted is None else max(0, self.granted - self.used)

    def covers(self, cost: int) -> bool:
        return self.granted is None or self.granted - self.used >= cost


class CreditLedger:
    def __init__(self, db: Engine) -> None:
        self.db = db

    def balance(self, owner_id: str) -> Balance:
        with self.db.connect() as connection:
            row = connection.execute(select(api_keys.c.credits_granted, api_keys.c.credits_used)
                                     .where(api_keys.c.id == owner_id)).one()
        return Balance(row.credits_granted, int(row.credits_used))

    def charge(self, connection: Connection, owner_id: str, cost: int) -> bool:
        """Take `cost` credits if the key has them; False (nothing taken) otherwise."""
        charged = connection.execute(
            update(api_keys)
            .where(api_keys.c.id == owner_id,
                   (api_keys.c.credits_granted.is_(None))
                   | (api_keys.c.credits_granted - api_keys.c.credits_used >= cost))
            .values(credits_used=api_keys.c.credits_used + cost)
        )
        return bool(charged.rowcount)

    def refund(self, connection: Connection, owner_id: str, cost: int) -> None:
        used = api_keys.c.credits_used
        connection.execute(
            update(api_keys).where(api_keys.c.id == owner_id)
            .values(credits_used=case((used >= cost, used - cost), else_=0))
        )

    def open(self, connection: Connection, owner_id: str, granted: int | None) -> None:
        """A new key's starting balance (None: unlimited)."""
        connection.execute(update(api_keys).where(api_keys.c.id == owner_id)
                           .values(credits_granted=granted, credits_used=0))

    def grant(self, owner_id: str, credits: int) -> None:
        with self.db.begin() as connection:
            connection.execute(update(api_keys).where(api_keys.c.id == owner_id).values(
                credits_granted=func.coalesce(api_keys.c.credits_granted, 0) + credits))
