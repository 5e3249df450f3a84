"""Books and their authors, over two REST services (the README's walkthrough)."""

from __future__ import annotations

from pathlib import Path

import strawberry

from tessera.compose import Arg, Graph, Rest, fixtures, link

# How each service is asked for records, declared once.
ALL_BOOKS = Rest("books", one="/books", batch="none", answer="list")
AUTHORS = Rest("authors", many="/authors", one="/authors/{key}", param="id", batch="repeat")
BOOKS_BY_AUTHOR = Rest("books", many="/books", param="author_ids", group_by="author_id")


@strawberry.type
class Author:
    id: strawberry.ID
    name: str
    born: int | None
    books: list[Book] | None = link(BOOKS_BY_AUTHOR, key="id")


@strawberry.type
class Book:
    id: strawberry.ID
    title: str
    year: int | None
    author_id: strawberry.Private[strawberry.ID | None] = None
    author: Author | None = link(AUTHORS, key="author_id")


@strawberry.type
class Query:
    books: list[Book] = link(ALL_BOOKS)
    author: Author | None = link(AUTHORS, key=Arg("id"))


graph = Graph(query=Query, demo=fixtures(Path(__file__).parent / "data"), name="library")
