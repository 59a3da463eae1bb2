"""PostgreSQL URLs: recognizing them and keeping their passwords out of sight.

Imports nothing from psycopg, so that ``open_store`` can name the store in a
missing-extra error and ``import legato`` stays free of it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit

SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg3://")
_MASK = "***"
# Too short to search for without masking unrelated text in a message.
_MIN_SECRET = 3


def is_postgres_url(url: str) -> bool:
    return url.startswith(SCHEMES) or url.startswith("postgresql+")


def libpq_url(url: str) -> str:
    """The URL as libpq takes it: SQLAlchemy-style driver suffixes removed."""
    scheme, sep, rest = url.partition("://")
    if scheme.startswith("postgresql+"):
        return "postgresql" + sep + rest
    return url


def _split_userinfo(netloc: str) -> tuple[str | None, str, str]:
    """(userinfo or None, '@' or '', hosts) of a URL's authority part."""
    userinfo, at, hosts = netloc.rpartition("@")
    return (userinfo if at else None), at, hosts


def display_url(url: str) -> str:
    """``url`` with its password (in the authority or the query) replaced by ``***``."""
    url = libpq_url(url)
    parts = urlsplit(url)
    userinfo, at, hosts = _split_userinfo(parts.netloc)
    if userinfo is not None and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        userinfo = f"{user}:{_MASK}"
    netloc = f"{userinfo}{at}{hosts}" if userinfo is not None else hosts
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    if parts.query:
        pairs = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            hidden = "password" in key.lower()
            pairs.append(f"{key}={_MASK if hidden else quote(value, safe='/:,@')}")
        shown += "?" + "&".join(pairs)
    return shown


def secrets_of(url: str) -> list[str]:
    """Every spelling of the passwords in ``url`` that a message might repeat."""
    parts = urlsplit(libpq_url(url))
    userinfo, _, _ = _split_userinfo(parts.netloc)
    found: list[str] = []
    if userinfo is not None and ":" in userinfo:
        found.append(userinfo.split(":", 1)[1])
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if "password" in key.lower():
            found.append(value)
            found.append(quote(value, safe=""))
    spelled = {variant for secret in found for variant in (secret, unquote(secret))}
    return sorted((s for s in spelled if len(s) >= _MIN_SECRET), key=len, reverse=True)


class Redactor:
    """Removes a URL's passwords from any text (error messages, mostly)."""

    def __init__(self, url: str) -> None:
        secrets = secrets_of(url)
        self._pattern = (
            re.compile("|".join(re.escape(secret) for secret in secrets)) if secrets else None
        )

    def __call__(self, message: str) -> str:
        if self._pattern is None:
            return message
        return self._pattern.sub(_MASK, message)
