"""The credits ledger: the only module that writes a key's credit columns.

A job is charged when it is queued (in the transaction that queues it) and refunded when it fails
or is canceled (in the transaction that ends it). `credits_granted` NULL means unlimited.

A key that belongs to a team draws on the team's balance (the credit columns of `teams`, owned
here too): one conditional UPDATE per charge, so two members' concurrent submits never take more
than the team has, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, case, func, select, update

from roomrender.db.tables import api_keys, team_members, teams


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

    def _account(self, connection: Connection, owner_id: str) -> tuple[Table, Any]:
        """Whose balance a key draws on: its team's when it is a member, else its own."""
        team_id = connection.execute(select(team_members.c.team_id)
                                     .where(team_members.c.key_id == owner_id)).scalar()
        return (teams, team_id) if team_id is not None else (api_keys, owner_id)

    def balance(self, owner_id: str) -> Balance:
        with self.db.connect() as connection:
            table, account = self._account(connection, owner_id)
            row = connection.execute(select(table.c.credits_granted, table.c.credits_used)
                                     .where(table.c.id == account)).one()
        return Balance(row.credits_granted, int(row.credits_used))

    def team_balance(self, team_id: int) -> Balance:
        with self.db.connect() as connection:
            row = connection.execute(select(teams.c.credits_granted, teams.c.credits_used)
                                     .where(teams.c.id == team_id)).one()
        return Balance(row.credits_granted, int(row.credits_used))

    def charge(self, connection: Connection, owner_id: str, cost: int) -> bool:
        """Take `cost` credits if the key (or its team) has them; False (nothing taken) otherwise."""
        table, account = self._account(connection, owner_id)
        charged = connection.execute(
            update(table)
            .where(table.c.id == account,
                   (table.c.credits_granted.is_(None))
                   | (table.c.credits_granted - table.c.credits_used >= cost))
            .values(credits_used=table.c.credits_used + cost)
        )
        return bool(charged.rowcount)

    def refund(self, connection: Connection, owner_id: str, cost: int) -> None:
        table, account = self._account(connection, owner_id)
        used = table.c.credits_used
        connection.execute(
            update(table).where(table.c.id == account)
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

    def open_team(self, connection: Connection, team_id: int, granted: int | None) -> None:
        """A new team's starting balance (None: unlimited)."""
        connection.execute(update(teams).where(teams.c.id == team_id)
                           .values(credits_granted=granted, credits_used=0))

    def grant_team(self, team_id: int, credits: int) -> None:
        with self.db.begin() as connection:
            connection.execute(update(teams).where(teams.c.id == team_id).values(
                credits_granted=func.coalesce(teams.c.credits_granted, 0) + credits))
