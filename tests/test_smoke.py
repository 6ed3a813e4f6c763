"""The app builds on both databases and the demo flow works."""


def test_register_and_cancel_roundtrip(signed_in, make_event, counts):
    client, _user = signed_in
    event = make_event(capacity=2)
    response = client.post(f"/events/{event.id}/register", htmx=True)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["HX-Location"]
    assert counts(event.id)["confirmed"] == 1
    response = client.post(f"/events/{event.id}/cancel", htmx=True)
    assert "Register" in response.get_data(as_text=True)
    assert counts(event.id)["confirmed_count"] == 0
