"""Teams: keys sharing one balance, members' roles, invitations answered once, usage per member
per day; through Luw's /v2/team/* as the official client calls them (Luvi-io/luw-mcp
`src/tools/workspace.ts`, tool `luw_team`: `send_invitation {email, role}`, `respond_invitation
{token, act: "accept"|"decline"}`, `members/:user_id/role {role}`)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from roomrender.app import create_app
from roomrender.canonical.errors import InsufficientCredits
from roomrender.canonical.models import GenerationRequest, Task
from roomrender.canonical.tasks import TASKS
from roomrender.db.tables import api_keys, jobs
from roomrender.services import Services, build_services
from tests.conftest import BASE_URL, drain
from tests.fakes import AllTasksEngine


@pytest.fixture
def svc(settings) -> Iterator[Services]:
    built = build_services(settings, engine=AllTasksEngine())
    yield built
    built.db.dispose()


@pytest.fixture
def client(svc: Services) -> Iterator[TestClient]:
    app = create_app(svc.settings, services=svc, workers=0, janitor=False)
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.json()["status"] is True
    return response.json()


def joined(client: TestClient, svc: Services, owner: dict[str, str], name: str,
           role: str = "member") -> tuple[dict[str, str], str]:
    """A new key, invited by `owner` and accepting: its headers and key id."""
    key, plaintext = svc.keys.create(name, credits=0)
    invitation = ok(client.post("/v2/team/send_invitation", headers=owner,
                                json={"email": f"{name}@example.com", "role": role}))["invitation"]
    auth = {"Authorization": f"Bearer {plaintext}"}
    ok(client.post("/v2/team/respond_invitation", headers=auth,
                   json={"token": invitation["token"], "act": "accept"}))
    return auth, key.id


def test_two_members_concurrent_submits_are_charged_once_from_the_team(client, svc) -> None:
    owner_key, owner_plain = svc.keys.create("owner", credits=0)
    cost = TASKS[Task.text_to_image].cost.credits
    team = svc.teams.create("Design dept", owner_key.id, credits=5 * cost)
    owner = {"Authorization": f"Bearer {owner_plain}"}
    _, first_id = joined(client, svc, owner, "ana")
    _, second_id = joined(client, svc, owner, "ben")
    members = [svc.keys.get(first_id), svc.keys.get(second_id)]

    start = threading.Barrier(12)
    outcomes: list[str] = []

    def submit(member_index: int) -> None:
        start.wait()
        try:
            svc.jobs.submit(members[member_index],
                            GenerationRequest(task="text_to_image", prompt="a calm room"))
            outcomes.append(f"queued:{member_index}")
        except InsufficientCredits:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit, args=(index % 2,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    counts = Counter(outcome.split(":")[0] for outcome in outcomes)
    assert counts == {"queued": 5, "refused": 7}
    assert svc.ledger.team_balance(team.id).used == 5 * cost
    with svc.db.connect() as connection:
        assert len(connection.execute(select(jobs.c.owner_id)).scalars().all()) == 5
        # The members' own balances were never touched.
        used = dict(connection.execute(select(api_keys.c.id, api_keys.c.credits_used)).all())
    assert used[first_id] == used[second_id] == 0
    # Every member reads the one balance, in Luw's shapes.
    credits = ok(client.get("/v2/team/credits", headers=owner))["credits"]
    assert (credits["available"], credits["used"]) == (0, 5 * cost)
    assert client.get("/v2/credits", headers=owner).json()["credits"]["available"] == 0

    drain(svc)
    usage = ok(client.get("/v2/team/usage", headers=owner))
    assert usage["total_credits"] == 5 * cost
    per_member = {row["name"]: row["credits"] for row in usage["members"]}
    assert per_member["ana"] + per_member["ben"] == 5 * cost and per_member["owner"] == 0
    assert usage["daily"] and all(row["credits"] == row["generations"] * cost
                                  for row in usage["daily"])


def test_an_invitation_is_answered_once_and_roles_are_kept(client, svc) -> None:
    owner_key, owner_plain = svc.keys.create("owner")
    svc.teams.create("Studio", owner_key.id, credits=10)
    owner = {"Authorization": f"Bearer {owner_plain}"}
    invitation = ok(client.post("/v2/team/send_invitation", headers=owner,
                                json={"email": "cy@example.com", "role": "admin"}))["invitation"]
    pending = ok(client.get("/v2/team/pending_invitations", headers=owner))["invitations"]
    assert [item["email"] for item in pending] == ["cy@example.com"]

    invitee = {"Authorization": f"Bearer {svc.keys.create('cy')[1]}"}
    intruder = {"Authorization": f"Bearer {svc.keys.create('dee')[1]}"}
    answered = ok(client.post("/v2/team/respond_invitation", headers=invitee,
                              json={"token": invitation["token"], "act": "accept"}))
    assert answered["invitation"]["status"] == "accepted"
    for someone in (invitee, intruder):
        again = client.post("/v2/team/respond_invitation", headers=someone,
                            json={"token": invitation["token"], "act": "accept"})
        # A conflict is a 400 in Luw's statuses (the dialect has no 409).
        assert again.status_code == 400 and "already accepted" in again.json()["error"]
    assert client.get("/v2/team/info", headers=intruder).status_code == 404
    assert ok(client.get("/v2/team/pending_invitations", headers=owner))["invitations"] == []

    members = ok(client.get("/v2/team/members", headers=owner))["members"]
    assert sorted((m["name"], m["role"]) for m in members) == [("cy", "admin"), ("owner", "owner")]
    cy = next(m for m in members if m["name"] == "cy")
    info = ok(client.get("/v2/team/info", headers=invitee))
    assert (info["team"]["name"], info["role"], info["user_id"]) == ("Studio", "admin", cy["id"])
    # An admin does not set roles; the owner does.
    assert client.put(f"/v2/team/members/{cy['id']}/role", headers=invitee,
                      json={"role": "member"}).status_code == 403
    assert ok(client.put(f"/v2/team/members/{cy['id']}/role", headers=owner,
                         json={"role": "member"}))["member"]["role"] == "member"
    assert client.post("/v2/team/send_invitation", headers=invitee,
                       json={"email": "x@example.com"}).status_code == 403
    ok(client.delete(f"/v2/team/members/{cy['id']}", headers=owner))
    assert client.get("/v2/team/credits", headers=invitee).status_code == 404


def test_another_team_s_members_and_invitations_are_not_found(client, svc) -> None:
    first_key, first_plain = svc.keys.create("first")
    second_key, second_plain = svc.keys.create("second")
    svc.teams.create("One", first_key.id, credits=3)
    svc.teams.create("Two", second_key.id, credits=3)
    first = {"Authorization": f"Bearer {first_plain}"}
    second = {"Authorization": f"Bearer {second_plain}"}
    _, member_id = joined(client, svc, first, "member-of-one")
    member = next(m for m in ok(client.get("/v2/team/members", headers=first))["members"]
                  if m["name"] == "member-of-one")
    assert client.delete(f"/v2/team/members/{member['id']}", headers=second).status_code == 404
    assert client.put(f"/v2/team/members/{member['id']}/role", headers=second,
                      json={"role": "admin"}).status_code == 404
    names = {m["name"] for m in ok(client.get("/v2/team/members", headers=second))["members"]}
    assert names == {"second"}
    # A key already in a team does not join another one.
    invitation = ok(client.post("/v2/team/send_invitation", headers=second,
                                json={"email": "m@example.com"}))["invitation"]
    assert svc.keys.get(member_id).name == "member-of-one"
    refused = client.post("/v2/team/respond_invitation", headers=first,
                          json={"token": invitation["token"], "act": "accept"})
    assert refused.status_code == 400 and "already in a team" in refused.json()["error"]


def test_an_operator_gives_a_department_one_balance(tmp_path, monkeypatch, room_jpeg) -> None:
    from typer.testing import CliRunner

    from roomrender.cli import app as cli
    from roomrender.config import Settings
    from tests.conftest import data_uri

    monkeypatch.setenv("ROOMRENDER_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    head = runner.invoke(cli, ["keys", "create", "--name", "head"])
    assert head.exit_code == 0, head.output
    head_plain = head.output.strip().splitlines()[-1]
    settings = Settings()
    built = build_services(settings, engine=AllTasksEngine())
    try:
        head_id = next(key.id for key in built.keys.list() if key.name == "head")
        made = runner.invoke(cli, ["teams", "create", "--name", "Interiors", "--owner", head_id,
                                   "--credits", "4"])
        assert made.exit_code == 0 and "created team 1" in made.output, made.output
        staff = runner.invoke(cli, ["keys", "create", "--name", "staff", "--team", "1"])
        assert staff.exit_code == 0, staff.output
        staff_plain = staff.output.strip().splitlines()[-1]
        assert runner.invoke(cli, ["teams", "grant", "1", "6"]).exit_code == 0
        listed = runner.invoke(cli, ["teams", "list"])
        assert "Interiors" in listed.output and "10" in listed.output
        assert runner.invoke(cli, ["teams", "create", "--name", "X", "--owner", head_id]).exit_code == 2

        app = create_app(built.settings, services=built, workers=0, janitor=False)
        with TestClient(app, base_url=BASE_URL) as native:
            staff_auth = {"Authorization": f"Bearer {staff_plain}"}
            head_auth = {"Authorization": f"Bearer {head_plain}"}
            team = native.get("/v1/teams/current", headers=staff_auth)
            assert team.status_code == 200, team.text
            assert (team.json()["name"], team.json()["role"]) == ("Interiors", "member")
            assert team.json()["credits"]["available"] == 10
            members = native.get("/v1/teams/current/members", headers=head_auth).json()["members"]
            assert sorted((m["key_name"], m["role"]) for m in members) == [
                ("head", "owner"), ("staff", "member")]
            job = native.post("/v1/jobs", headers=staff_auth,
                              json={"task": "upscale", "image": data_uri(room_jpeg), "scale": 2})
            assert job.status_code == 202, job.text
            spent = native.get("/v1/teams/current", headers=head_auth).json()["credits"]
            cost = TASKS[Task.upscale].cost.credits
            assert (spent["used"], spent["available"]) == (cost, 10 - cost)
            # The owner's own key reads the same balance.
            assert native.get("/v1/account", headers=head_auth).json()["credits"]["available"] == 10 - cost
            # Native boards: the same store, the native shapes; another key's board is 404.
            board = native.post("/v1/boards", headers=staff_auth, json={"name": "Lobby"})
            assert board.status_code == 201, board.text
            board_id = board.json()["id"]
            media = native.post(f"/v1/boards/{board_id}/media", headers=staff_auth,
                                json={"url": data_uri(room_jpeg)})
            assert media.status_code == 201 and media.json()["folder_id"] is None, media.text
            assert native.get(f"/v1/boards/{board_id}", headers=head_auth).status_code == 404
            assert native.get(f"/v1/boards/{board_id}", headers=staff_auth).json()["media"][0][
                "id"] == media.json()["id"]
    finally:
        built.db.dispose()
