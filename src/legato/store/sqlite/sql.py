"""The SQL files beside this module: named queries, the schema and the migrations."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

_BLOCK_START = re.compile(r"^-- ([a-z_][a-z0-9_]*) --$", re.MULTILINE)
_REFERENCE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _strip_comment_lines(text: str) -> str:
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
        blocks[name] = _strip_comment_lines(text[match.end() : end])

    def expand(match: re.Match[str]) -> str:
        return blocks.get(match.group(1), match.group(0))

    return {name: _REFERENCE.sub(expand, sql) for name, sql in blocks.items()}


def split_statements(script: str) -> list[str]:
    """The statements of a SQL script, one per item.

    ``executescript`` would commit any open transaction first, so scripts are
    run statement by statement inside our own transaction instead; SQLite's
    own ``complete_statement`` decides where a statement ends.
    """
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if _strip_comment_lines(pending):
        raise ValueError(f"SQL script ends inside a statement: {pending.strip()[:80]!r}")
    return statements


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: list[str]


def load_migrations() -> list[Migration]:
    """The numbered migrations shipped with this version, oldest first."""
    found: list[Migration] = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            continue
        text = entry.read_text(encoding="utf-8")
        found.append(Migration(int(match.group(1)), match.group(2), split_statements(text)))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3... without gaps; found {versions}")
    return found


QUERIES: dict[str, str] = parse_queries(_read("queries.sql"))
SCHEMA: list[str] = split_statements(_read("schema.sql"))
MIGRATIONS: list[Migration] = load_migrations()
LATEST_VERSION: int = MIGRATIONS[-1].version
