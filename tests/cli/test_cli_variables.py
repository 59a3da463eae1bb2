"""``legato variable set | get | ls | delete``, and flows reading what it set."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli

READER = """
from legato import flow, task
from legato.variables import Variable


@task
def bump() -> int:
    count = Variable.get("count", default=0) + 1
    Variable.set("count", count, overwrite=True)
    return count


@flow
def reader() -> dict:
    return {"crew": Variable.get("crew"), "missing": Variable.get("nope", default="d"),
            "count": bump()}
"""


def test_set_get_list_and_delete_variables(cli: Cli) -> None:
    assert cli("variable", "set", "api_url", "https://example.com").code == 0
    result = cli("variable", "set", "crew", '["zaphod", "arthur"]', "--tag", "team")
    assert result.code == 0, str(result)
    assert cli("variable", "set", "answer", "42").code == 0
    assert cli("variable", "set", "text", '"42"').code == 0

    assert cli("variable", "get", "api_url").stdout == "https://example.com\n"
    assert cli("variable", "get", "crew").stdout == '["zaphod", "arthur"]\n'
    assert cli("variable", "get", "answer", "--json").json() == 42
    assert cli("variable", "get", "text", "--json").json() == "42"

    listed = cli("variable", "ls", "--json").json()
    assert [(v["name"], v["value"], v["tags"]) for v in listed] == [
        ("answer", 42, []),
        ("api_url", "https://example.com", []),
        ("crew", ["zaphod", "arthur"], ["team"]),
        ("text", "42", []),
    ]
    table = cli("variable", "ls").stdout
    assert "api_url" in table and "https://example.com" in table and "team" in table

    assert cli("variable", "delete", "crew").code == 0
    missing = cli("variable", "get", "crew")
    assert missing.code == 2 and "no variable named 'crew'" in missing.stderr
    assert cli("variable", "delete", "crew").code == 2
    assert [v["name"] for v in cli("variable", "ls", "--json").json()] == [
        "answer",
        "api_url",
        "text",
    ]


def test_an_existing_variable_needs_overwrite(cli: Cli) -> None:
    assert cli("variable", "set", "answer", "42").code == 0
    again = cli("variable", "set", "answer", "43")
    assert again.code == 2
    assert "variable 'answer' already exists" in again.stderr and "--overwrite" in again.stderr
    assert cli("variable", "get", "answer").stdout == "42\n"
    assert cli("variable", "set", "answer", "43", "--overwrite").code == 0
    assert cli("variable", "get", "answer").stdout == "43\n"


def test_bad_names_and_values_are_refused_in_one_line(cli: Cli) -> None:
    bad_name = cli("variable", "set", "Has Space", "1")
    assert bad_name.code == 2 and "invalid variable name 'Has Space'" in bad_name.stderr
    assert len(bad_name.stderr.strip().splitlines()) == 1
    huge = cli("variable", "set", "big", "x" * 6000)
    assert huge.code == 2 and "more than the 5000" in huge.stderr
    nan = cli("variable", "set", "nan", "NaN")
    assert nan.code == 2 and "JSON cannot hold" in nan.stderr
    assert cli("variable", "ls").stdout.startswith("no variables")


def test_a_flow_reads_and_writes_variables_set_from_the_cli(cli: Cli) -> None:
    path = cli.flows_dir / "reader.py"
    path.write_text(READER)
    assert cli("variable", "set", "crew", '["trillian"]').code == 0
    for count in (1, 2):
        result = cli("run", f"{path}:reader", "--json")
        assert result.code == 0, str(result)
        assert result.json()["result"] == {"crew": ["trillian"], "missing": "d", "count": count}
    assert cli("variable", "get", "count").stdout == "2\n"
