"""The To: header of an email: a person's name and address, read back exactly by any client.

Flask-Mail runs every name through email.header.Header and formataddr, and the
standard library's own folding splits long non-ASCII names inside a character
or adds spaces; either way a name with commas, quotes or accents could come out
mangled or as more than one address. Here the header is written once, by hand:
a plain name as it is, anything else as RFC 2047 encoded words (whose
separating spaces a reader drops), folded at spaces to 78 columns.
"""

from __future__ import annotations

import base64
import re

MAX_LINE = 78
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/^_`{|}~ -]+")  # atoms; no '=?' (encoded words)
_PLAIN_WORD_MAX = 60  # a longer word could not be folded: it is encoded instead
_WORD_BYTES = 45  # base64 of 45 bytes is 60 characters: an encoded word of 72 (RFC 2047: 75)


def _encoded_words(name: str) -> list[str]:
    """The name as encoded words, each a whole number of characters."""
    words, chunk = [], ""
    for char in name:
        if len((chunk + char).encode()) > _WORD_BYTES:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w.encode()).decode('ascii')}?=" for w in words if w]


def _ascii_address(address: str) -> str:
    """The address with an internationalized domain in its ASCII (IDNA) form."""
    local, _, domain = address.rpartition("@")
    try:
        domain.encode("ascii")
    except UnicodeEncodeError:
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def to_header(name: str, address: str, header: str = "To") -> str:
    """The folded value of a `header: name <address>` line (without the header name).

    `name` must already be one line (compose.one_line).
    """
    name = " ".join(name.split())
    if not name:
        tokens = []
    elif _PLAIN_NAME.fullmatch(name) and max(map(len, name.split(" "))) <= _PLAIN_WORD_MAX:
        tokens = name.split(" ")
    else:
        tokens = _encoded_words(name)
    tokens.append(f"<{_ascii_address(address)}>")
    lines, line = [], ""
    width = len(header) + 2  # "To: "
    for token in tokens:
        if line and width + len(line) + 1 + len(token) > MAX_LINE:
            lines.append(line)
            line, width = token, 1  # a folded line starts with one space
        else:
            line = f"{line} {token}" if line else token
    lines.append(line)
    return "\r\n ".join(lines)
