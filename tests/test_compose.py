"""The documented examples compose exactly as SPEC section 5 says."""

from __future__ import annotations

import pytest
from conftest import Recorder, gateway, gql

pytestmark = pytest.mark.anyio

ORDER_PAGE = """
query($id: ID!) {
  order(id: $id) {
    id status total createdAt
    user { id name email address }
    items { productId quantity unitPrice product { id name price } stock inStock }
    products { id name }
  }
}"""


async def test_order_42_composes_from_four_services() -> None:
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        body = await gql(client, ORDER_PAGE, {"id": "42"})
    assert "errors" not in body
    order = body["data"]["order"]
    assert order["status"] == "SHIPPED" and order["total"] == 70.0
    assert order["user"] == {"id": "7", "name": "Aziz", "email": "aziz@example.com",
                             "address": "12 Main St, Tashkent"}
    assert [(i["productId"], i["quantity"], i["unitPrice"], i["stock"], i["inStock"])
            for i in order["items"]] == [("A1", 2, 15.0, 120, True), ("B2", 1, 40.0, 0, False)]
    assert [p["id"] for p in order["products"]] == ["A1", "B2"]
    assert recorder.counts() == {"orders": 1, "users": 1, "products": 1, "inventory": 1}


async def test_order_123_belongs_to_alice_with_widget() -> None:
    async with gateway() as client:
        body = await gql(client, ORDER_PAGE, {"id": "123"})
    order = body["data"]["order"]
    assert order["user"]["name"] == "Alice" and order["user"]["id"] == "456"
    assert [p["id"] for p in order["products"]] == ["1", "2", "3"]
    assert order["products"][0]["name"] == "Widget"


async def test_products_are_distinct_in_item_order() -> None:
    async with gateway() as client:
        body = await gql(client, '{ order(id: "123") { items { productId } products { id } } }')
    items = [i["productId"] for i in body["data"]["order"]["items"]]
    assert [p["id"] for p in body["data"]["order"]["products"]] == list(dict.fromkeys(items))


async def test_missing_entities_are_null_without_errors() -> None:
    async with gateway() as client:
        body = await gql(client, '{ order(id: "nope") { id } user(id: "0") { id } '
                                 'products(ids: ["1", "missing"]) { id } }')
    assert "errors" not in body
    assert body["data"] == {"order": None, "user": None,
                            "products": [{"id": "1"}, None]}


async def test_user_orders_newest_first_with_limit_and_reviews() -> None:
    async with gateway() as client:
        body = await gql(client, '{ user(id: "7") { orders(limit: 20) { id createdAt } '
                                 'reviews { rating product { name } author { name } } } }')
    orders = body["data"]["user"]["orders"]
    assert len(orders) == 20
    stamps = [o["createdAt"] for o in orders]
    assert stamps == sorted(stamps, reverse=True)
    reviews = body["data"]["user"]["reviews"]
    assert {"rating": 4, "product": {"name": "Green Tea"}, "author": {"name": "Aziz"}} in reviews


async def test_dashboard_and_average_rating() -> None:
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        body = await gql(client, '{ dashboard(userId: "7") { user { name } orders { id } '
                                 'reviews { product { id averageRating reviews { rating } } } } }')
    dash = body["data"]["dashboard"]
    assert dash["user"] == {"name": "Aziz"}
    assert len(dash["orders"]) == 10
    for review in dash["reviews"]:
        ratings = [r["rating"] for r in review["product"]["reviews"]]
        assert review["product"]["averageRating"] == round(sum(ratings) / len(ratings), 2)
    # user, orders-by-user, reviews-by-user in the first wave; products and reviews next
    assert recorder.counts() == {"users": 1, "orders": 1, "reviews": 2, "products": 1}
