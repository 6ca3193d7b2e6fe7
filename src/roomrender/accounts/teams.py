"""Teams: keys that share one credit balance (a department's). The owner of `teams` (their
name), `team_members` and `team_invitations`; the credit columns of `teams` are the ledger's.

A member is a key, with a role: owner (one, the team's maker), admin, member. Owners and admins
invite (an invitation carries a token, answered once by the key that presents it: accepted, that
key joins) and remove members; the owner sets roles. A key is in one team at most. Whatever names
another team's member or invitation answers NotFound, like one that does not exist.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from roomrender.accounts.credits import Balance, CreditLedger
from roomrender.accounts.keys import ApiKey
from roomrender.canonical.errors import Conflict, Forbidden, InvalidRequest, NotFound
from roomrender.db.tables import api_keys, jobs, team_invitations, team_members, teams

ROLES = ("owner", "admin", "member")
INVITABLE = ("admin", "member")
MANAGERS = ("owner", "admin")
# Jobs refunded (failed, canceled) cost nothing.
CHARGED = ("queued", "running", "succeeded")
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    created_at: float


@dataclass(frozen=True)
class Member:
    id: int
    team_id: int
    key_id: str
    key_name: str
    key_prefix: str
    email: str | None
    role: str
    joined_at: float


@dataclass(frozen=True)
class Invitation:
    id: int
    team_id: int
    email: str
    role: str
    token: str
    status: str
    created_at: float
    answered_at: float | None


@dataclass(frozen=True)
class Usage:
    """What one member's jobs took on one day (UTC)."""

    member_id: int
    day: str
    credits: int
    generations: int


def _role(role: str | None, allowed: tuple[str, ...]) -> str:
    chosen = (role or "member").strip().lower()
    if chosen not in allowed:
        raise InvalidRequest(f"role must be one of {', '.join(allowed)}, not {chosen!r}")
    return chosen


class TeamStore:
    def __init__(self, db: Engine, ledger: CreditLedger) -> None:
        self.db = db
        self.ledger = ledger

    # -- teams ----------------------------------------------------------------------------

    def create(self, name: str, owner_key_id: str, credits: int | None = None) -> Team:
        """A team whose owner is this key, with its starting balance (None: unlimited)."""
        cleaned = name.strip()
        if not cleaned or len(cleaned) > 200:
            raise InvalidRequest("a team needs a name of 1 to 200 characters")
        if credits is not None and credits < 0:
            raise InvalidRequest("a team's credits are 0 or more")
        now = time.time()
        try:
            with self.db.begin() as connection:
                if connection.execute(select(api_keys.c.id).where(
                        api_keys.c.id == owner_key_id, api_keys.c.revoked_at.is_(None))).first() is None:
                    raise NotFound(f"no key {owner_key_id}")
                team_id = int(connection.execute(insert(teams).values(
                    name=cleaned, credits_used=0, created_at=now)).inserted_primary_key[0])  # type: ignore[index]
                self.ledger.open_team(connection, team_id, credits)
                connection.execute(insert(team_members).values(
                    team_id=team_id, key_id=owner_key_id, role="owner", joined_at=now))
        except IntegrityError:
            raise Conflict("this key is already in a team", code="already_in_team") from None
        return Team(team_id, cleaned, now)

    def all(self) -> list[Team]:
        with self.db.connect() as connection:
            rows = connection.execute(select(teams).order_by(teams.c.id)).all()
        return [Team(row.id, row.name, row.created_at) for row in rows]

    def get(self, team_id: int) -> Team:
        if not 1 <= team_id <= MAX_ID:
            raise NotFound(f"no team {team_id}")
        with self.db.connect() as connection:
            row = connection.execute(select(teams).where(teams.c.id == team_id)).first()
        if row is None:
            raise NotFound(f"no team {team_id}")
        return Team(row.id, row.name, row.created_at)

    def grant(self, team_id: int, credits: int) -> Balance:
        self.get(team_id)
        self.ledger.grant_team(team_id, credits)
        return self.ledger.team_balance(team_id)

    def add_key(self, team_id: int, key_id: str, role: str = "member") -> Member:
        """An administrator's shortcut (CLI, native API): a key joins without an invitation."""
        self.get(team_id)
        try:
            with self.db.begin() as connection:
                member_id = int(connection.execute(insert(team_members).values(
                    team_id=team_id, key_id=key_id, role=_role(role, INVITABLE),
                    joined_at=time.time())).inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError:
            raise Conflict("this key is already in a team", code="already_in_team") from None
        return self._member(team_id, member_id)

    # -- what a member sees ---------------------------------------------------------------

    def membership(self, key: ApiKey) -> Member:
        with self.db.connect() as connection:
            row = self._member_rows(connection).where(team_members.c.key_id == key.id)
            found = connection.execute(row).first()
        if found is None:
            raise NotFound("this key is in no team")
        return self._to_member(found)

    def team_of(self, key: ApiKey) -> tuple[Team, Member]:
        member = self.membership(key)
        return self.get(member.team_id), member

    def balance(self, key: ApiKey) -> Balance:
        return self.ledger.team_balance(self.membership(key).team_id)

    def members(self, key: ApiKey) -> list[Member]:
        return self.members_of(self.membership(key).team_id)

    def members_of(self, team_id: int) -> list[Member]:
        with self.db.connect() as connection:
            rows = connection.execute(self._member_rows(connection).where(
                team_members.c.team_id == team_id).order_by(team_members.c.id)).all()
        return [self._to_member(row) for row in rows]

    def usage(self, key: ApiKey, *, days: int = 30, now: float | None = None) -> list[Usage]:
        """Credits and generations per member per UTC day, the last `days` days (from the jobs
        the server still keeps: the janitor deletes a job's row when its data expires)."""
        if not 1 <= days <= 3660:
            raise InvalidRequest("days is 1 to 3660")
        members = {member.key_id: member.id for member in self.members(key)}
        since = (now or time.time()) - days * 86400
        with self.db.connect() as connection:
            rows = connection.execute(select(jobs.c.owner_id, jobs.c.created_at, jobs.c.cost).where(
                jobs.c.owner_id.in_(list(members)), jobs.c.created_at >= since,
                jobs.c.status.in_(CHARGED))).all()
        totals: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
        for row in rows:
            day = datetime.fromtimestamp(row.created_at, UTC).date().isoformat()
            total = totals[(members[row.owner_id], day)]
            total[0] += int(row.cost)
            total[1] += 1
        return [Usage(member, day, credits, count)
                for (member, day), (credits, count) in sorted(totals.items(), key=lambda i: (i[0][1], i[0][0]))]

    # -- managing -------------------------------------------------------------------------

    def invite(self, key: ApiKey, email: str | None, role: str | None = None) -> Invitation:
        me = self._manager(key)
        address = (email or "").strip()
        if "@" not in address or len(address) > 320:
            raise InvalidRequest("an invitation needs an email address")
        now = time.time()
        with self.db.begin() as connection:
            invitation_id = int(connection.execute(insert(team_invitations).values(
                team_id=me.team_id, email=address, role=_role(role, INVITABLE),
                token=secrets.token_urlsafe(24), status="pending", invited_by=me.id,
                created_at=now)).inserted_primary_key[0])  # type: ignore[index]
            return self._invitation(connection.execute(select(team_invitations).where(
                team_invitations.c.id == invitation_id)).one())

    def pending(self, key: ApiKey) -> list[Invitation]:
        me = self._manager(key)
        with self.db.connect() as connection:
            rows = connection.execute(select(team_invitations).where(
                team_invitations.c.team_id == me.team_id, team_invitations.c.status == "pending")
                .order_by(team_invitations.c.id)).all()
        return [self._invitation(row) for row in rows]

    def respond(self, key: ApiKey, token: str | None, accept: bool) -> Invitation:
        """Answer an invitation, once: the first answer wins, a second is a Conflict."""
        if not token:
            raise InvalidRequest("token is required: the invitation's token")
        now = time.time()
        try:
            with self.db.begin() as connection:
                row = connection.execute(select(team_invitations).where(
                    team_invitations.c.token == token)).first()
                if row is None:
                    raise NotFound("no invitation with this token")
                answered = connection.execute(update(team_invitations).where(
                    team_invitations.c.id == row.id, team_invitations.c.status == "pending").values(
                    status="accepted" if accept else "declined", answered_at=now))
                if not answered.rowcount:
                    raise Conflict(f"this invitation was already {row.status}",
                                   code="invitation_answered")
                if accept:
                    connection.execute(insert(team_members).values(
                        team_id=row.team_id, key_id=key.id, email=row.email, role=row.role,
                        joined_at=now))
                found = connection.execute(select(team_invitations).where(
                    team_invitations.c.id == row.id)).one()
        except IntegrityError:
            raise Conflict("this key is already in a team", code="already_in_team") from None
        return self._invitation(found)

    def remove(self, key: ApiKey, member_id: int) -> None:
        me = self._manager(key)
        target = self._member(me.team_id, member_id)
        if target.role == "owner":
            raise Forbidden("the team's owner cannot be removed")
        if target.role == "admin" and me.role != "owner":
            raise Forbidden("only the owner removes an admin")
        with self.db.begin() as connection:
            connection.execute(delete(team_members).where(team_members.c.id == member_id))

    def set_role(self, key: ApiKey, member_id: int, role: str | None) -> Member:
        me = self.membership(key)
        target = self._member(me.team_id, member_id)
        if me.role != "owner":
            raise Forbidden("only the team's owner sets roles")
        if target.role == "owner":
            raise Forbidden("the owner's role does not change")
        with self.db.begin() as connection:
            connection.execute(update(team_members).where(team_members.c.id == member_id)
                               .values(role=_role(role, INVITABLE)))
        return self._member(me.team_id, member_id)

    # -- rows -----------------------------------------------------------------------------

    def _manager(self, key: ApiKey) -> Member:
        me = self.membership(key)
        if me.role not in MANAGERS:
            raise Forbidden("only the team's owner and admins do this")
        return me

    def _member(self, team_id: int, member_id: int) -> Member:
        if not 1 <= member_id <= MAX_ID:
            raise NotFound(f"no member {member_id}")
        with self.db.connect() as connection:
            row = connection.execute(self._member_rows(connection).where(
                team_members.c.id == member_id, team_members.c.team_id == team_id)).first()
        if row is None:
            raise NotFound(f"no member {member_id}")
        return self._to_member(row)

    def _member_rows(self, connection: Connection) -> Any:
        return select(team_members, api_keys.c.name.label("key_name"),
                      api_keys.c.prefix.label("key_prefix")).join(
            api_keys, api_keys.c.id == team_members.c.key_id)

    def _to_member(self, row: Any) -> Member:
        return Member(row.id, row.team_id, row.key_id, row.key_name, row.key_prefix, row.email,
                      row.role, row.joined_at)

    def _invitation(self, row: Any) -> Invitation:
        return Invitation(row.id, row.team_id, row.email, row.role, row.token, row.status,
                          row.created_at, row.answered_at)
