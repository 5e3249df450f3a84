"""tessera.compose: bindings in their three batch shapes, records, links, graphs, the
N+1 check and schema-diff. Calls are counted at an httpx.MockTransport that
answers like a service would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import strawberry
from conftest import Recorder, gateway, gql

from tessera.compose import Arg, Graph, Rest, link, source
from tessera.compose.diff import diff
from tessera.compose.records import builder
from tessera.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = Path(__file__).resolve().parent / "graphs"
pytestmark = pytest.mark.anyio

PEOPLE = {"1": {"id": 1, "name": "Ada", "team": "a"}, "2": {"id": 2, "name": "Bo", "team": "a"},
          "3": {"id": 3, "name": "Cy", "team": "b"}}


def service(request: httpx.Request) -> httpx.Response:
    """`people` in every shape a service might speak."""
    path, params = request.url.path, request.url.params
    if path.startswith("/people/"):
        found = PEOPLE.get(path.rsplit("/", 1)[1])
        return httpx.Response(200, json=found) if found else httpx.Response(404)
    if path == "/people":
        if "ids" in params:
            wanted = params["ids"].split(",")
        elif "id" in params:
            wanted = params.get_list("id")
        else:
            wanted = list(PEOPLE)
        teams = params.get_list("team")
        return httpx.Response(200, json=[p for k, p in PEOPLE.items()
                                         if k in wanted and (not teams or p["team"] in teams)])
    if path == "/teams":
        return httpx.Response(200, json=[p for p in PEOPLE.values()
                                         if p["team"] in params.get_list("team")])
    return httpx.Response(404)


@strawberry.type
class Person:
    id: strawberry.ID
    full_name: str = source("name")


@strawberry.type
class Member:
    id: strawberry.ID
    name: int  # wrong on purpose: the service sends a string


def people_graph(binding: Rest) -> Graph:
    @strawberry.type
    class Query:
        people: list[Person | None] = link(binding, keys=Arg("ids"))

    return Graph(query=Query, name="people")


@pytest.mark.parametrize(("binding", "calls"), [
    (Rest("people", many="/people"), ["/people?ids=1,2,3,9"]),
    (Rest("people", many="/people", param="id", batch="repeat"),
     ["/people?id=1&id=2&id=3&id=9"]),
    (Rest("people", one="/people/{key}", batch="none"),
     ["/people/1", "/people/2", "/people/3", "/people/9"]),
], ids=["comma", "repeat", "one per key"])
async def test_the_three_batch_shapes(binding: Rest, calls: list[str]) -> None:
    recorder = Recorder(httpx.MockTransport(service))
    settings = {"backends": {"people": {"url": "http://people.test"}}}
    query = '{ people(ids: ["1", "2", "1", "3", "9"]) { id fullName } }'
    async with gateway(settings, recorder, graph=people_graph(binding)) as client:
        body = await gql(client, query)
    assert body["data"]["people"] == [{"id": "1", "fullName": "Ada"},
                                      {"id": "2", "fullName": "Bo"},
                                      {"id": "1", "fullName": "Ada"},
                                      {"id": "3", "fullName": "Cy"}, None]
    assert sorted(r.url.raw_path.decode() for r in recorder.requests) == calls


async def test_chunks_at_max_batch_size() -> None:
    recorder = Recorder(httpx.MockTransport(service))
    settings = {"backends": {"people": {"url": "http://people.test", "max_batch_size": 2}}}
    graph = people_graph(Rest("people", many="/people"))
    async with gateway(settings, recorder, graph=graph) as client:
        await gql(client, '{ people(ids: ["1", "2", "3"]) { id } }')
    assert sorted(r.url.raw_path.decode() for r in recorder.requests) == [
        "/people?ids=1,2", "/people?ids=3"]


async def test_grouped_one_to_many_and_a_wrong_record() -> None:
    teams = Rest("people", many="/teams", param="team", batch="repeat", group_by="team")

    @strawberry.type
    class Query:
        members: list[list[Person] | None] = link(teams, keys=Arg("ids"))
        wrong: list[list[Member] | None] = link(teams, keys=Arg("ids"))

    recorder = Recorder(httpx.MockTransport(service))
    settings = {"backends": {"people": {"url": "http://people.test"}}}
    async with gateway(settings, recorder, graph=Graph(query=Query)) as client:
        body = await gql(client, '{ members(ids: ["a", "b", "z"]) { id } }')
        bad = await gql(client, '{ wrong(ids: ["b"]) { id } }')
    assert body["data"]["members"] == [[{"id": "1"}, {"id": "2"}], [{"id": "3"}], []]
    assert len(recorder.requests) == 2  # one call each, both grouped
    assert bad["data"]["wrong"] == [None]
    assert bad["errors"][0]["extensions"] == {"code": "BACKEND_BAD_RESPONSE",
                                              "service": "people"}


def test_declarations_that_cannot_work_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="needs `many`"):
        Rest("x", one="/x/{key}")
    with pytest.raises(ValueError, match="must contain"):
        Rest("x", many="/x", one="/x/all")
    with pytest.raises(ValueError, match="exactly one of key= and keys="):
        link(Rest("x", many="/x"))
    with pytest.raises(ValueError, match=r"needs \['limit'\]"):
        link(Rest("x", one="/x?k={key}&limit={limit}", batch="none", answer="list"), key="id")


def test_a_graph_naming_a_backend_without_url_stops_start_up() -> None:
    done = subprocess.run([sys.executable, "-m", "tessera", "check", "--config",
                           str(GRAPHS / "missing_backend.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "the graph 'n+1' calls backend 'books', which has no url" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_lists_an_n_plus_one_path_and_fails() -> None:
    done = subprocess.run([sys.executable, "-m", "tessera", "check", "--config",
                           str(GRAPHS / "n_plus_one.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("N+1: Author.books calls books:/books?author_id={key} once per parent item, "
            "e.g. { authors { books } }") in done.stdout
    assert "FAILED: 1 field(s) with N+1 paths" in done.stdout


@pytest.mark.parametrize(("module", "words"), [
    ("no_such_module_anywhere", "no module named"),
    (str(GRAPHS / "absent.py"), "file not found"),
    ("json", "must define `graph"),
])
def test_a_graph_module_that_cannot_be_used_is_a_config_error(module: str,
                                                              words: str) -> None:
    from tessera.compose import load_graph

    with pytest.raises(ConfigError, match=words):
        load_graph(module)


def test_schema_diff_breaking_and_dangerous(tmp_path: Path) -> None:
    old = "type Query { a: Int, b(x: Int): String }"
    breaking_changes, dangerous = diff(old, "type Query { a: Int, b(x: Int, y: Int): String }")
    assert breaking_changes == [] and len(dangerous) == 1 and "y" in dangerous[0]
    (tmp_path / "old.graphql").write_text(old)
    (tmp_path / "new.graphql").write_text("type Query { b(x: Int): String }")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tessera", "schema-diff", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    breaking = run(str(tmp_path / "old.graphql"), str(tmp_path / "new.graphql"))
    same = run(str(tmp_path / "old.graphql"), str(tmp_path / "old.graphql"))
    (tmp_path / "bad.graphql").write_text("type {")
    bad = run(str(tmp_path / "old.graphql"), str(tmp_path / "bad.graphql"))
    assert breaking.returncode == 1 and "BREAKING FIELD_REMOVED: Field Query.a was removed." \
        in breaking.stdout
    assert same.returncode == 0 and "0 breaking, 0 dangerous" in same.stdout
    assert bad.returncode == 2 and "not a schema" in bad.stderr


def test_export_schema_of_any_graph() -> None:
    done = subprocess.run([sys.executable, "-m", "tessera", "export-schema", "--config",
                           str(GRAPHS / "n_plus_one.toml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert "authors(ids: [ID!]!): [Author]!" in done.stdout


def test_a_broken_fixture_file_stops_start_up_naming_it(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "posts.json").write_text('{"posts": [')
    (tmp_path / "graph.py").write_text(
        "from pathlib import Path\nimport strawberry\n"
        "from tessera.compose import Graph, fixtures\n\n"
        "@strawberry.type\nclass Query:\n    a: int = 1\n\n"
        "graph = Graph(query=Query, demo=fixtures(Path(__file__).parent / 'data'))\n")
    (tmp_path / "tessera.toml").write_text('[graph]\nmodule = "graph.py"\n')
    done = subprocess.run([sys.executable, "-m", "tessera", "check-config",
                           str(tmp_path / "tessera.toml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "fixture file posts.json" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("text", "said"), [
    ('{"things": [{"id": 1, "v": NaN}]}', "NaN is not a JSON value"),
    ('{"things": [{"id": 1, "v": -Infinity}]}', "-Infinity is not a JSON value"),
    ('{"things": [{"id": 1, "name": "\\ud800"}]}', "surrogates not allowed"),
])
def test_a_fixture_file_the_services_could_not_write_is_refused(tmp_path: Path, text: str,
                                                                said: str) -> None:
    from tessera.compose import fixtures

    (tmp_path / "things.json").write_text(text)
    with pytest.raises(ValueError, match="fixture file things.json: .*" + said):
        fixtures(tmp_path)


async def test_fixture_services_answer_json_as_starlette_writes_it(tmp_path: Path) -> None:
    """The demo services encode with orjson (DemoJSON): the bytes Starlette's
    JSONResponse writes (an exponent's zeros aside: 1e-7 for 1e-07), and a value
    orjson refuses (an integer past 64 bits) still served."""
    from starlette.responses import JSONResponse

    from tessera.compose import fixtures
    from tessera.demo.fixtures import DemoJSON

    records = [{"id": 1, "name": "Zoë ✓", "price": 0.1, "tags": ["a", None],
                "nested": {"ok": True, "n": -3, "f": 1e-7}},
               {"id": 2, "name": "big", "count": 2 ** 70}]
    for value in (records[:1], records, {"A1": 120}, {"error": "not found"}):
        ours, theirs = DemoJSON(value).body, JSONResponse(value).body
        assert ours.replace(b"1e-7", b"1e-07") == theirs
        assert json.loads(ours) == value
    (tmp_path / "things.json").write_text(json.dumps({"things": records}))
    app = fixtures(tmp_path).make()["things"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://things.demo") as client:
        big, one = await client.get("/things/2"), await client.get("/things?id=1")
    assert big.status_code == 200 and big.json()["count"] == 2 ** 70
    assert one.content == DemoJSON(records[:1]).body and one.json() == records[:1]


@strawberry.type
class Tagged:
    name: str
    upper: strawberry.Private[str | None] = None

    def __post_init__(self) -> None:
        self.upper = self.name.upper()


def test_records_of_a_type_with_its_own_init_logic_go_through_it() -> None:
    """Records are built by filling the instance directly only where the dataclass
    __init__ would do nothing more; a __post_init__ still runs."""
    assert builder(Tagged, "tags")({"name": "ab"}).upper == "AB"


@strawberry.type
class Measured:
    id: strawberry.ID
    weight: float
    name: str
    count: int
    ok: bool
    note: str | None = None


@strawberry.type
class MeasuredByInit(Measured):  # the same fields, built through its own __init__
    def __post_init__(self) -> None:
        pass


GOOD = {"id": "a", "weight": 1.5, "name": "n", "count": 2, "ok": True}


@pytest.mark.parametrize(("change", "expected"), [
    ({}, {"id": "a", "weight": 1.5, "count": 2}),
    ({"id": 7, "weight": 3}, {"id": "7", "weight": 3.0}),   # numbers widened in place
    ({"id": 2 ** 70}, {"id": str(2 ** 70)}),
    ({"note": None}, {"note": None}),
    ({"id": True}, None), ({"id": 1.5}, None), ({"id": None}, None), ({"id": [1]}, None),
    ({"weight": False}, None), ({"weight": "1"}, None), ({"count": True}, None),
    ({"count": 1.0}, None), ({"name": 1}, None), ({"ok": 1}, None), ({"note": 3}, None),
])
def test_record_values_are_checked_and_numbers_widened_alike_on_both_builders(
        change: dict[str, object], expected: dict[str, object] | None) -> None:
    """An ID takes a string or an int (made a string), a Float an int (made a
    float), never a bool; anything else is the service's bad response. The
    generated builder and the one through __init__ agree on every case."""
    from tessera.errors import BackendBadResponse

    record = {**GOOD, **change}
    for kind in (Measured, MeasuredByInit):
        if expected is None:
            with pytest.raises(BackendBadResponse, match="missing or wrong"):
                builder(kind, "scales")(record)
            continue
        made = builder(kind, "scales")(record)
        assert {name: getattr(made, name) for name in expected} == expected
        assert type(made.weight) is float and type(made.id) is str
