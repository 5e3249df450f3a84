"""A deliberately bad graph: Author.books calls its backend once per author."""

from __future__ import annotations

import strawberry

from tessera.compose import Arg, Graph, Rest, link

AUTHORS = Rest("authors", many="/authors", param="id", batch="repeat")
BOOKS_OF = Rest("books", one="/books?author_id={key}", batch="none", answer="list")


@strawberry.type
class Book:
    id: strawberry.ID
    title: str


@strawberry.type
class Author:
    id: strawberry.ID
    books: list[Book] | None = link(BOOKS_OF, key="id")


@strawberry.type
class Query:
    authors: list[Author | None] = link(AUTHORS, keys=Arg("ids"))
    author: Author | None = link(AUTHORS, key=Arg("id"))


graph = Graph(query=Query, name="n+1")
