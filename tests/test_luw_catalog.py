"""What the official Luw client sends, on the embedded default (the preview engine): every room and
building type of its catalog is accepted as `knows`, and every model of the service is either run,
or answered "needs the diffusers engine" or "not yet supported", never "unknown".

The lists are copied from the client's own catalog: Luvi-io/luw-mcp `src/catalog.ts` (commit
64d044f4), INTERIOR_TYPES, EXTERIOR_TYPES and MODEL_IDS; the service's generators are those of
its documentation (shared/api/luw.md)."""

from __future__ import annotations

import pytest

from roomrender.catalog import room_types
from roomrender.services import Services
from tests.conftest import data_uri

INTERIOR_TYPES = [
    "Living Room", "Kitchen", "Bedroom", "Bathroom", "Attic", "Dining Room", "Study Room", "Home Office",
    "Gaming Room", "Meeting Room", "Workshop", "Fitness Gym", "Coffee Shop", "Clothing Store",
    "Walk-in Closet", "Toilet", "Restaurant", "Office", "Coworking Space", "Hotel Lobby", "Hotel Room",
    "Hotel Bathroom", "Exhibition Space", "Onsen", "Mudroom", "Open Kitchen", "Master Bedroom",
    "Kids Bedroom", "Laundry Room", "Home Theater", "Balcony", "Reception Area", "Cafe", "Retail Store",
    "Beauty Salon",
]
EXTERIOR_TYPES = [
    "House Exterior", "Outdoor Pool Area", "Outdoor Patio", "Outdoor Garden", "Modern House Exterior",
    "Traditional House Exterior", "Eco-Friendly House", "Sustainable Building", "Green Building Design",
    "Luxury Villa Exterior", "Apartment Complex", "Shopping Mall Exterior", "Skyscraper Building",
    "Hotel Building", "Office Building", "Cultural Center", "Museum Building", "Educational Building",
    "Hospital Building", "Sports Complex", "Transport Hub", "Mixed-Use Development", "Industrial Building",
    "Urban Residence", "Resort Complex", "Solar Powered House", "Container Building", "Bamboo Architecture",
    "Earth House", "Fitness Gym", "Coffee Shop", "Clothing Store", "Restaurant", "Exhibition Space",
    "Balcony", "Cafe", "Retail Store", "Beauty Salon",
]
CLIENT_MODEL_IDS = [
    "interior", "exterior", "sketch", "render", "magicprompt", "magicwand", "moodboard", "landscape",
    "enhance", "expand", "vector", "removefurniture", "segment", "segmentprompt", "fluw", "fluwvector",
    "pattern", "changebg", "removebg", "video", "3dgen",
]
# shared/api/luw.md: the models this server maps to a task, then the service's other generators.
DOCUMENTED_MODELS = [
    "interior", "exterior", "sketch", "render", "removefurniture", "magicwand", "enhance", "expand",
    "segment", "segmentprompt", "removebg",
    "video", "motion", "3dgen", "fluw", "fluwvector", "vector", "pattern", "moodboard", "changebg",
    "magicprompt", "landscape", "archigpt",
]
# Generative only: the preview engine answers that they need the diffusers engine.
NEEDS_DIFFUSERS = {"sketch", "render", "removefurniture", "segment", "segmentprompt", "fluwvector", "magicprompt"}
RUN_BY_PREVIEW = {"interior", "exterior", "enhance", "expand", "removebg", "video", "motion", "3dgen", "vector",
                  "pattern", "changebg", "moodboard", "landscape"}


@pytest.fixture
def room(room_jpeg: bytes) -> str:
    return data_uri(room_jpeg)


def generate(client, auth, **fields):
    return client.post("/v2/generate", headers=auth, json=fields)


def room_type_of(services: Services, auth: dict[str, str], processing_url: str) -> tuple[str | None, bool]:
    owner = services.keys.authenticate(auth["Authorization"][7:])
    request = services.jobs.get(owner, processing_url).request
    return request.room_type, request.exterior


@pytest.mark.parametrize("model,types", [("interior", INTERIOR_TYPES), ("exterior", EXTERIOR_TYPES)])
def test_every_room_and_building_type_of_the_official_clients_catalog_is_accepted(
        client, auth, services, room, model, types):
    mapped: dict[str, str] = {}
    for name in types:
        # The client sends them as written in its catalog, one per request.
        answer = generate(client, auth, model=model, image=room, knows=name, styles="Modern")
        assert answer.status_code == 200, (name, answer.text)
        room_type, exterior = room_type_of(services, auth, answer.json()["processing_url"])
        assert room_type in room_types(), name
        assert exterior is (model == "exterior")
        mapped[name] = room_type
    # Building types keep what they are: a skyscraper is not a house.
    if model == "exterior":
        assert len({mapped[name] for name in ("House Exterior", "Skyscraper Building", "Hospital Building",
                                               "Museum Building", "Luxury Villa Exterior")}) == 5
        assert mapped["Outdoor Garden"] == "garden" and mapped["Outdoor Pool Area"] == "pool_area"
        assert all(room_types()[mapped[name]].exterior for name in EXTERIOR_TYPES[:29])
    else:
        assert mapped["Kids Bedroom"] == "kids_room" and mapped["Cafe"] == mapped["Coffee Shop"]
        assert len(set(mapped.values())) >= 30


def test_knows_values_are_read_whatever_their_case(client, auth, services, room):
    answer = generate(client, auth, model="exterior", image=room, knows="skyscraper building")
    assert answer.status_code == 200, answer.text
    assert room_type_of(services, auth, answer.json()["processing_url"]) == ("skyscraper", True)


@pytest.mark.parametrize("model", sorted(set(CLIENT_MODEL_IDS) | set(DOCUMENTED_MODELS)))
def test_no_model_of_the_service_is_unknown(client, auth, room, model):
    # magicwand's mask: the whole photo (any image will do as a mask).
    answer = generate(client, auth, model=model, image=room, prompt="walls", mask_image=room)
    error = answer.json().get("error", "")
    assert "unknown model" not in error
    if model in RUN_BY_PREVIEW:
        assert answer.status_code == 200, answer.text
    elif model in NEEDS_DIFFUSERS:
        assert answer.status_code == 400 and "needs the diffusers engine" in error
    elif model == "fluw":
        # From words, after a guide image or not: a model paints it.
        assert answer.status_code == 400 and "needs the diffusers engine" in error
    elif model == "magicwand":
        # Without remove=true, an edit by prompt: generative.
        assert answer.status_code == 400 and "needs the diffusers engine" in error
    elif model == "archigpt":
        assert answer.status_code == 400 and "needs a language model" in error
    else:
        assert answer.status_code == 400
        assert f"the model '{model}' is not yet supported by this server" in error


def test_a_model_name_in_capitals_is_the_same_model(client, auth, room):
    assert generate(client, auth, model="Interior", image=room).status_code == 200
    answer = generate(client, auth, model="Sketch", image=room)
    assert answer.status_code == 400 and "needs the diffusers engine" in answer.json()["error"]
