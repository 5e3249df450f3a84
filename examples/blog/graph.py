"""A blog over services shaped like the public JSONPlaceholder API: posts, users and
comments. Written only with Tessera's public API; served by examples/blog/tessera.toml.

    posts     GET /posts, GET /posts/{id}, GET /posts?userId=1&userId=2
    users     GET /users/{id}, GET /users?id=1&id=2
    comments  GET /comments?postId=1&postId=2

`{ posts { id title user { id name email } } }` (the N+1 query of the public
GraphQL benchmarks) costs two calls: every post, then every author in one batch.
"""

from __future__ import annotations

from pathlib import Path

import strawberry

from tessera.compose import Arg, Graph, Rest, fixtures, link, source

# --- bindings ------------------------------------------------------------------------

ALL_POSTS = Rest("posts", one="/posts", batch="none", answer="list", name="all_posts")
POSTS = Rest("posts", many="/posts", one="/posts/{key}", param="id", batch="repeat",
             name="posts")
POSTS_BY_USER = Rest("posts", many="/posts", param="userId", batch="repeat",
                     group_by="userId", name="posts_by_user")
USERS = Rest("users", many="/users", one="/users/{key}", param="id", batch="repeat",
             name="users")
COMMENTS_BY_POST = Rest("comments", many="/comments", param="postId", batch="repeat",
                        group_by="postId", list_size=5, name="comments_by_post")

# --- types -----------------------------------------------------------------------------


@strawberry.type(description="A comment on a post (comments service).")
class Comment:
    id: strawberry.ID = strawberry.field(description="The comment's id.")
    name: str = strawberry.field(description="The comment's title.")
    email: str | None = strawberry.field(description="Its author's email address.")
    body: str = strawberry.field(description="The comment's text.")


@strawberry.type(description="A post (posts service), with its author and comments.")
class Post:
    id: strawberry.ID = strawberry.field(description="The post's id.")
    user_id: strawberry.ID = source("userId", description="The id of the post's author.")
    title: str = strawberry.field(description="The post's title.")
    body: str = strawberry.field(description="The post's text.")
    user: User | None = link(USERS, key="user_id",
                             description="The post's author (users service).")
    comments: list[Comment] | None = link(COMMENTS_BY_POST, key="id",
                                          description="The comments on the post (comments "
                                          "service).")


@strawberry.type(description="A writer (users service).")
class User:
    id: strawberry.ID = strawberry.field(description="The user's id.")
    name: str = strawberry.field(description="The user's full name.")
    username: str = strawberry.field(description="The user's handle.")
    email: str | None = strawberry.field(description="The user's email address.")
    posts: list[Post] | None = link(POSTS_BY_USER, key="id",
                                    description="The user's posts (posts service).")


@strawberry.type(description="The blog.")
class Query:
    posts: list[Post] = link(ALL_POSTS, description="Every post.")
    post: Post | None = link(POSTS, key=Arg("id", description="The post's id."),
                             description="One post by id; null if there is none.")
    user: User | None = link(USERS, key=Arg("id", description="The user's id."),
                             description="One user by id; null if there is none.")


ROUTES = {
    "/api/posts/*": {
        "backend_requests": [
            {"service": "posts", "path_template": "/posts/{post_id}"},
            {"service": "users", "path_template": "/users/{user_id}", "source": "posts.userId"},
        ],
        "response_template": {"post": "$.posts", "author": "$.users"},
        "timeout_ms": 2000,
    },
}

graph = Graph(query=Query, routes=ROUTES, demo=fixtures(Path(__file__).parent / "data"),
              name="blog")
