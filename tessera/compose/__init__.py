"""Compose your own services: the public API for declaring a graph over REST.

    from tessera.compose import Arg, Graph, Rest, link

    users = Rest("users", many="/users", param="id", batch="repeat")

    @strawberry.type
    class Post:
        id: strawberry.ID
        user_id: strawberry.Private[str] = source("userId", private=True)
        user: User | None = link(users, key="user_id")

    @strawberry.type
    class Query:
        post: Post | None = link(posts, key=Arg("id"))

    graph = Graph(query=Query, demo=fixtures(Path(__file__).parent / "data"))

`Rest` says how a backend is asked for records by key (`binding.py`), `link`
declares a field loaded through it (`fields.py`), records become the field's
Strawberry type, checked (`records.py`), and `Graph` is what a config's
`[graph] module` names (`graph.py`). Everything else Tessera does for a linked
field is derived from these declarations. A plain `@strawberry.field` resolver
can still use the loaders itself: `info.context.loaders[binding].load(key)`.
"""

from ..demo.fixtures import fixtures
from .binding import Rest
from .fields import Arg, Link, link, link_of
from .graph import Demo, Graph, LinkedField, load_graph
from .records import builder, records_of, source

__all__ = ["Arg", "Demo", "Graph", "Link", "LinkedField", "Rest", "builder", "fixtures", "link",
           "link_of", "load_graph", "records_of", "source"]
