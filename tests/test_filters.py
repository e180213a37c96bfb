"""Attribute filters (OpenAI's grammar and the --where shorthand) on a real store, in every search mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from typer.testing import CliRunner

from tests.conftest import BACKENDS, assert_clean_error
from vscli.cli import commands
from vscli.cli.options import parse_where
from vscli.errors import ExitCode, InvalidInput
from vscli.filters import matches, validate

# Every file mentions "report", so a keyword query for it reaches them all; attributes differ.
FILES = {
    "jane-2019.md": ["author=Jane", "year=2019", "draft=false", "tag=ml"],
    "jane-2021.md": ["author=Jane", "year=2021", "draft=true", "tag=db"],
    "omar-2020.md": ["author=Omar", "year=2020", "draft=false", "tag=ml"],
    "omar-2023.md": ["author=Omar", "year=2023"],
    "li-string-year.md": ["author=Li", 'year="2021"'],  # a string, not a number
    "plain.md": [],
}
TEXTS = {
    "jane-2019.md": "Report on gradient boosting for churn prediction in a telecom company.",
    "jane-2021.md": "Report on sharding a relational database across three regions.",
    "omar-2020.md": "Report on labelling images of birds for a classifier.",
    "omar-2023.md": "Report on the cost of running language models on laptops.",
    "li-string-year.md": "Report on the history of the printing press.",
    "plain.md": "Report without any attributes at all.",
}

CASES = [  # (filter, the files it selects)
    ({"type": "eq", "key": "author", "value": "Jane"}, {"jane-2019.md", "jane-2021.md"}),
    ({"type": "eq", "key": "year", "value": 2021}, {"jane-2021.md"}),  # the string "2021" does not match
    ({"type": "eq", "key": "draft", "value": True}, {"jane-2021.md"}),
    ({"type": "ne", "key": "author", "value": "Jane"},
     {"omar-2020.md", "omar-2023.md", "li-string-year.md", "plain.md"}),  # files without it match ne
    ({"type": "gt", "key": "year", "value": 2020}, {"jane-2021.md", "omar-2023.md"}),
    ({"type": "gte", "key": "year", "value": 2020}, {"jane-2021.md", "omar-2020.md", "omar-2023.md"}),
    ({"type": "lt", "key": "year", "value": 2020}, {"jane-2019.md"}),
    ({"type": "lte", "key": "year", "value": 2020}, {"jane-2019.md", "omar-2020.md"}),
    ({"type": "gte", "key": "year", "value": "2021"}, {"li-string-year.md"}),  # strings compare with strings
    ({"type": "in", "key": "tag", "value": ["db", "nlp"]}, {"jane-2021.md"}),
    ({"type": "nin", "key": "tag", "value": ["ml"]},
     {"jane-2021.md", "omar-2023.md", "li-string-year.md", "plain.md"}),
    ({"type": "and", "filters": [{"type": "eq", "key": "author", "value": "Omar"},
                                 {"type": "gte", "key": "year", "value": 2021}]}, {"omar-2023.md"}),
    ({"type": "or", "filters": [{"type": "eq", "key": "tag", "value": "db"},
                                {"type": "and", "filters": [{"type": "eq", "key": "author", "value": "Omar"},
                                                            {"type": "lt", "key": "year", "value": 2021}]}]},
     {"jane-2021.md", "omar-2020.md"}),
]


@pytest.fixture(scope="module", params=BACKENDS)
def store_home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               model_cache: Path) -> Iterator[Path]:
    """One store with attributed files, shared by the tests of this module (they only read it); once on
    each backend (on Milvus, filters become Milvus expressions)."""
    home = tmp_path_factory.mktemp("filters-home")
    folder = tmp_path_factory.mktemp("filters-files")
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VSCLI_CACHE_DIR", str(model_cache))
        if request.param == "milvus":
            mp.setenv("VSCLI_BACKEND", "milvus")
            mp.setenv("VSCLI_MILVUS_URI", str(home / "milvus.db"))
        assert runner.invoke(commands(), ["--home", str(home), "create", "docs"]).exit_code == 0
        for name, attrs in FILES.items():
            (folder / name).write_text(TEXTS[name] + "\n")
            args = ["--home", str(home), "upload", str(folder / name), "--store", "docs", "-q"]
            for attr in attrs:
                args += ["--attr", attr]
            result = runner.invoke(commands(), args)
            assert result.exit_code == 0, result.output
        yield home


def _found(cli, home: Path, *args: str) -> list[str]:
    result = cli("--home", str(home), "query", "docs", *args, "--json")
    assert result.exit_code == 0, result.output
    return [r["filename"] for r in json.loads(result.stdout)["data"]]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
@pytest.mark.parametrize("flt,expected", CASES, ids=[json.dumps(c[0])[:60] for c in CASES])
def test_each_filter_in_each_mode(cli, store_home: Path, mode: str, flt: dict, expected: set[str]) -> None:
    found = _found(cli, store_home, "report", "-k", "50", "--mode", mode, "--filter", json.dumps(flt))
    assert set(found) == expected and len(found) == len(expected)


def test_where_shorthand_builds_the_same_filters(cli, store_home: Path) -> None:
    assert set(_found(cli, store_home, "report", "--where", "author=Jane")) == {"jane-2019.md", "jane-2021.md"}
    assert set(_found(cli, store_home, "report", "--where", "author=Omar", "--where", "year>=2021")) == {
        "omar-2023.md"}
    assert set(_found(cli, store_home, "report", "--where", "year<2021", "--where", "draft!=true")) == {
        "jane-2019.md", "omar-2020.md"}
    assert set(_found(cli, store_home, "report", "--where", 'year="2021"')) == {"li-string-year.md"}
    # --filter and --where together: both must hold
    assert set(_found(cli, store_home, "report", "--where", "tag=ml",
                      "--filter", '{"type":"eq","key":"author","value":"Omar"}')) == {"omar-2020.md"}


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_filter_applies_before_top_k(cli, store_home: Path, mode: str) -> None:
    """The query favours Jane's database report, but -k 2 among Omar's files still gives two results."""
    found = _found(cli, store_home, "report on sharding a relational database", "-k", "2", "--mode", mode,
                   "--where", "author=Omar")
    assert sorted(found) == ["omar-2020.md", "omar-2023.md"]


@pytest.mark.parametrize("args,fragment", [
    (["--filter", "{nope"], "--filter is not valid JSON"),
    (["--filter", '{"type":"like","key":"a","value":"b"}'], '"type" must be one of'),
    (["--filter", '{"type":"eq","value":"b"}'], 'non-empty string "key"'),
    (["--filter", '{"type":"eq","key":"a"}'], 'needs a "value"'),
    (["--filter", '{"type":"in","key":"a","value":"b"}'], '"in" needs a list'),
    (["--filter", '{"type":"and","filters":[]}'], 'non-empty "filters" list'),
    (["--filter", '{"type":"or","filters":[{"type":"eq","key":"a","value":{}}]}'], "filter.filters[0]"),
    (["--where", "author"], "--where expects KEY OP VALUE"),
    (["--where", "=Jane"], "--where expects KEY OP VALUE"),
    (["--mode", "fuzzy"], "--mode must be one of hybrid, vector, keyword"),
])
def test_bad_filters_are_clean_errors(cli, store_home: Path, args: list[str], fragment: str) -> None:
    assert_clean_error(cli("--home", str(store_home), "query", "docs", "report", *args), ExitCode.USAGE, fragment)


def test_matches_rules() -> None:
    attrs = {"n": 3, "f": 2.5, "s": "b", "t": True}
    assert matches({"type": "eq", "key": "n", "value": 3.0}, attrs)  # numbers compare as numbers
    assert not matches({"type": "eq", "key": "t", "value": 1}, attrs)  # a boolean is not a number
    assert not matches({"type": "gt", "key": "t", "value": False}, attrs)  # booleans have no order
    assert not matches({"type": "gt", "key": "s", "value": 1}, attrs)  # mixed types never compare
    assert matches({"type": "lt", "key": "f", "value": 3}, attrs)
    assert not matches({"type": "lt", "key": "missing", "value": 3}, attrs)
    assert matches({"type": "nin", "key": "missing", "value": [1]}, attrs)
    deep: dict = {"type": "eq", "key": "n", "value": 3}
    for _ in range(20):
        deep = {"type": "and", "filters": [deep]}
    with pytest.raises(InvalidInput, match="deeper than"):
        validate(deep)


def test_where_values_are_typed_like_attributes() -> None:
    assert parse_where(["year>=2020", "ok=true", "name = Jane Doe", "code='007'", 'code2="007"', "x!=1.5"]) == [
        {"type": "gte", "key": "year", "value": 2020},
        {"type": "eq", "key": "ok", "value": True},
        {"type": "eq", "key": "name", "value": "Jane Doe"},
        {"type": "eq", "key": "code", "value": "'007'"},
        {"type": "eq", "key": "code2", "value": "007"},
        {"type": "ne", "key": "x", "value": 1.5},
    ]
