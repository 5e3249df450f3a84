"""A second subgraph for the federation test: `loyalty` extends Tessera's User with
`points` (Strawberry's own federation support; 10 points per unit of the id)."""

from __future__ import annotations

import strawberry
import strawberry.federation
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL


@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID
    points: int

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User:  # noqa: A002 - GraphQL's name
        return cls(id=id, points=int(id) * 10 if str(id).isdigit() else 0)


@strawberry.type
class Query:
    @strawberry.field
    def top_user(self) -> User:
        return User(id=strawberry.ID("7"), points=70)


def app() -> Starlette:
    schema = strawberry.federation.Schema(query=Query, federation_version="2.5")
    return Starlette(routes=[Route("/graphql", GraphQL(schema))])
