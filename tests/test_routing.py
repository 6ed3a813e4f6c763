"""Ids in URLs: anything that is not 1..2**31-1 matches no route (404), never a 500."""

from __future__ import annotations

import pytest

TOO_BIG = "99999999999999999999"


@pytest.mark.parametrize("path", [
    f"/events/{TOO_BIG}", f"/events/{TOO_BIG}/confirmation", "/events/2147483648",
    "/events/0", "/events/-1", "/events/01",
    f"/organizer/events/{TOO_BIG}", f"/organizer/events/{TOO_BIG}/attendees.csv",
])
def test_out_of_range_ids_are_404_on_pages(signed_in, path):
    client, _ = signed_in
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", [f"/events/{TOO_BIG}/register", f"/events/{TOO_BIG}/cancel"])
def test_out_of_range_ids_are_404_on_posts(signed_in, path):
    client, _ = signed_in
    assert client.post(path).status_code == 404


def test_the_largest_id_is_a_plain_not_found(signed_in):
    client, _ = signed_in
    assert client.get("/events/2147483647").status_code == 404


def test_api_root_answers_json(client):
    response = client.get("/api")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
