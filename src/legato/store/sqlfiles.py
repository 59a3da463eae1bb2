"""The SQL files kept beside each store backend: named queries and numbered migrations.

Shared by the backends; what differs between them (how a script splits into
statements) is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

_BLOCK_START = re.compile(r"^-- ([a-z_][a-z0-9_]*) --$", re.MULTILINE)
_REFERENCE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def read_sql(package: str, name: str) -> str:
    """The text of the SQL file ``name`` shipped in ``package``."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def strip_comment_lines(text: str) -> str:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip()


def parse_queries(text: str) -> dict[str, str]:
    """Split a queries file into ``{name: sql}`` at ``-- name --`` lines.

    ``{other}`` inside a block is replaced by the block named ``other``;
    unknown references (``{where}``) are left for the caller to fill.
    """
    blocks: dict[str, str] = {}
    starts = list(_BLOCK_START.finditer(text))
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
        name = match.group(1)
        if name in blocks:
            raise ValueError(f"query '{name}' is defined twice")
        blocks[name] = strip_comment_lines(text[match.end() : end])

    def expand(match: re.Match[str]) -> str:
        return blocks.get(match.group(1), match.group(0))

    return {name: _REFERENCE.sub(expand, sql) for name, sql in blocks.items()}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: list[str]


def load_migrations(package: str, split: Callable[[str], list[str]]) -> list[Migration]:
    """The numbered migrations in ``package``'s ``migrations`` folder, oldest first."""
    found: list[Migration] = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            continue
        text = entry.read_text(encoding="utf-8")
        found.append(Migration(int(match.group(1)), match.group(2), split(text)))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3... without gaps; found {versions}")
    return found
