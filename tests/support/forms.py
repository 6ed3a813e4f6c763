"""Reading the organizer's event form pages: URLs, field errors, values kept."""

from __future__ import annotations

import html
import re

NEW = "/organizer/events/new"


def edit_url(event) -> str:
    return f"/organizer/events/{event.id}/edit"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def field_errors(body: str) -> dict[str, list[str]]:
    """{field name: [messages]} from the re-rendered form."""
    found: dict[str, list[str]] = {}
    for block in re.findall(r'<div class="field[^"]*has-error">(.*?)</div>', body, re.S):
        name = re.search(r'name="([^"]+)"', block).group(1)
        found[name] = re.findall(r'<small class="error">(.*?)</small>', block, re.S)
    return found


def input_value(body: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', body)
    return match.group(1) if match else None
