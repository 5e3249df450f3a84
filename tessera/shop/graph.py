"""The shop: Tessera's default graph, declared with the public API only.

Five services (orders, users, products, inventory, reviews; their contract is in
the README), seven bindings, and the Strawberry types whose linked fields use
them. Everything Tessera does for these fields (batching, the same-hop prefetch,
partial failure, stale answers, cost, limits) comes from these declarations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import strawberry

from tessera.compose import Arg, Demo, Graph, Rest, link, records_of
from tessera.errors import BackendBadResponse

from .services import services

# --- bindings: how each service is asked, once -------------------------------------

ORDERS = Rest("orders", many="/orders", one="/orders/{key}", name="orders")
USERS = Rest("users", many="/users", one="/users/{key}", name="users")
PRODUCTS = Rest("products", many="/products", one="/products/{key}", name="products")
STOCK = Rest("inventory", many="/inventory", answer="map", name="stock")
REVIEWS_BY_PRODUCT = Rest("reviews", many="/reviews", param="product_ids",
                          group_by="product_id", name="reviews_by_product")
# The contract has no batch form for these: one call per user (see `tessera check`).
ORDERS_BY_USER = Rest("orders", one="/orders?user_id={key}&limit={limit}", batch="none",
                      answer="list", name="orders_by_user", per_key_ok=True)
REVIEWS_BY_USER = Rest("reviews", one="/reviews?user_id={key}", batch="none", answer="list",
                       name="reviews_by_user", per_key_ok=True)


def _in_stock(level: Any) -> bool | None:
    if level is None:
        return None
    if isinstance(level, bool) or not isinstance(level, int):
        raise BackendBadResponse("inventory", "answered with a stock level that is not an "
                                 "integer")
    return level > 0


def _average(found: list[Any]) -> float | None:
    ratings = [review.rating for review in records_of(Review, "reviews", found)]
    return round(sum(ratings) / len(ratings), 2) if ratings else None


def _distinct_products(order: Order) -> list[str]:
    return list(dict.fromkeys(item.product_id for item in order.items))


LIMIT = Arg(int, default=10, description="How many orders, from 1 to 100.", range=(1, 100),
            size=True)

# --- types ---------------------------------------------------------------------------


@strawberry.type(description="A user's page: the user, their latest orders and their "
                 "reviews, fetched together.")
class Dashboard:
    user_id: strawberry.Private[str]
    user: User | None = link(USERS, key="user_id", description="The user (users service).")
    orders: list[Order] | None = link(ORDERS_BY_USER, key="user_id", args={"limit": 10},
                                      description="The user's ten latest orders (orders "
                                      "service).")
    reviews: list[Review] | None = link(REVIEWS_BY_USER, key="user_id",
                                        description="The reviews the user wrote (reviews "
                                        "service).")


@strawberry.type(description="An order placed by a user (orders service).")
class Order:
    id: strawberry.ID = strawberry.field(description="The order's id.")
    status: str | None = strawberry.field(description="Where the order is, as the orders "
                                          "service says (e.g. PLACED, SHIPPED).")
    created_at: str | None = strawberry.field(description="When it was placed (ISO 8601).")
    total: float | None = strawberry.field(description="The order's total price.")
    items: list[OrderItem] = strawberry.field(description="What was ordered, line by line.")
    user_id: strawberry.Private[str | None] = None
    user: User | None = link(USERS, key="user_id", description="The user who placed it "
                             "(users service); null if unknown or if the users service "
                             "failed (see errors).")
    products: list[Product | None] = link(PRODUCTS, keys=_distinct_products,
                                          description="The order's distinct products, in "
                                          "item order (products service); an unknown "
                                          "product is null.")


@strawberry.type(description="One line of an order: a product and how many of it.")
class OrderItem:
    product_id: strawberry.ID = strawberry.field(description="The id of the product ordered.")
    quantity: int = strawberry.field(description="How many units were ordered.")
    unit_price: float = strawberry.field(description="The price of one unit when ordered.")
    product: Product | None = link(PRODUCTS, key="product_id", description="The product "
                                   "ordered (products service); null if unknown.")
    stock: int | None = link(STOCK, key="product_id", description="Units of the product in "
                             "stock now (inventory service).")
    in_stock: bool | None = link(STOCK, key="product_id", then=_in_stock,
                                 description="Whether the product is in stock now "
                                 "(inventory service).")


@strawberry.type(description="A product of the catalogue (products service), with its stock "
                 "(inventory service) and reviews (reviews service).")
class Product:
    id: strawberry.ID = strawberry.field(description="The product's id.")
    name: str = strawberry.field(description="The product's name.")
    price: float | None = strawberry.field(description="The current unit price.")
    description: str | None = strawberry.field(description="A longer description, if any.")
    stock: int | None = link(STOCK, key="id", description="Units in stock (inventory "
                             "service); null if unknown.")
    in_stock: bool | None = link(STOCK, key="id", then=_in_stock,
                                 description="Whether any unit is in stock (inventory "
                                 "service).")
    reviews: list[Review] | None = link(REVIEWS_BY_PRODUCT, key="id",
                                        description="The product's reviews (reviews "
                                        "service).")
    average_rating: float | None = link(REVIEWS_BY_PRODUCT, key="id", then=_average,
                                        description="The mean rating of its reviews, to two "
                                        "decimals; null without reviews.")


@strawberry.type(description="Everything a client can read through Tessera.")
class Query:
    order: Order | None = link(ORDERS, key=Arg("id", description="The id to look up."),
                               description="One order by id; null if the orders service "
                               "has no such order.")
    orders: list[Order | None] = link(ORDERS, keys=Arg("ids", description=(
        "The ids to look up (at most limits.max_ids); answers keep their order.")),
        description="Orders by id, in the order asked; an unknown id is null.")
    user: User | None = link(USERS, key=Arg("id", description="The id to look up."),
                             description="One user by id; null if unknown.")
    users: list[User | None] = link(USERS, keys=Arg("ids", description=(
        "The ids to look up (at most limits.max_ids); answers keep their order.")),
        description="Users by id, in the order asked; an unknown id is null.")
    product: Product | None = link(PRODUCTS, key=Arg("id", description="The id to look up."),
                                   description="One product by id; null if unknown.")
    products: list[Product | None] = link(PRODUCTS, keys=Arg("ids", description=(
        "The ids to look up (at most limits.max_ids); answers keep their order.")),
        description="Products by id, in the order asked; an unknown id is null.")

    @strawberry.field(description="A user's dashboard: user, latest orders and reviews, "
                      "each part failing on its own.")
    def dashboard(self, user_id: Annotated[strawberry.ID, strawberry.argument(
            description="The user whose dashboard this is.")]) -> Dashboard:
        return Dashboard(user_id=user_id)


@strawberry.type(description="A rating and comment on a product by a user (reviews service).")
class Review:
    id: strawberry.ID = strawberry.field(description="The review's id.")
    rating: int = strawberry.field(description="The rating given, as the reviews service "
                                   "stores it (1 to 5 in the demo data).")
    body: str | None = strawberry.field(description="The review's text, if any.")
    user_id: strawberry.Private[str | None] = None
    product_id: strawberry.Private[str | None] = None
    author: User | None = link(USERS, key="user_id", description="The user who wrote it "
                               "(users service); null if unknown.")
    product: Product | None = link(PRODUCTS, key="product_id", description="The product "
                                   "reviewed (products service); null if unknown.")


@strawberry.type(description="A customer (users service), with their orders and reviews.")
class User:
    id: strawberry.ID = strawberry.field(description="The user's id.")
    name: str = strawberry.field(description="The user's name.")
    email: str | None = strawberry.field(description="The user's email address, if known.")
    address: str | None = strawberry.field(description="The user's postal address, if known.")
    orders: list[Order] | None = link(ORDERS_BY_USER, key="id", args={"limit": LIMIT},
                                      description="The user's latest orders, newest first "
                                      "(orders service).")
    reviews: list[Review] | None = link(REVIEWS_BY_USER, key="id", description="The reviews "
                                        "the user wrote (reviews service).")


ROUTES = json.loads((Path(__file__).with_name("routes.json")).read_text("utf-8"))

SERVICES = ("orders", "users", "products", "inventory", "reviews")

graph = Graph(query=Query, routes=ROUTES, demo=Demo(SERVICES, services), name="shop")
