"""The Query root of SPEC section 2."""

from __future__ import annotations

from typing import Annotated

import strawberry

from .lookahead import Ctx
from .types import (
    Order,
    Product,
    Review,
    User,
    each,
    load_each,
    load_list,
    load_one,
    load_orders,
    load_products,
    with_links,
)


@strawberry.type(description="A user's page: the user, their latest orders and their "
                 "reviews, fetched together.")
class Dashboard:

    user_id: strawberry.Private[str]

    @strawberry.field(description="The user (users service).")
    async def user(self, info: Ctx) -> User | None:
        return await load_one(info, info.context.loaders.users, self.user_id, User.from_record)

    @strawberry.field(description="The user's ten latest orders (orders service).")
    async def orders(self, info: Ctx) -> list[Order] | None:
        return await load_orders(info, self.user_id, 10)

    @strawberry.field(description="The reviews the user wrote (reviews service).")
    async def reviews(self, info: Ctx) -> list[Review] | None:
        return await load_list(info, info.context.loaders.reviews_by_user, self.user_id,
                               Review.from_record)


_ID = "The id to look up."
_IDS = "The ids to look up (at most limits.max_ids); answers keep their order."
Id = Annotated[strawberry.ID, strawberry.argument(description=_ID)]
Ids = Annotated[list[strawberry.ID], strawberry.argument(description=_IDS)]


@strawberry.type(description="Everything a client can read through Tessera.")
class Query:
    @strawberry.field(description="One order by id; null if the orders service has no such "
                      "order.")
    async def order(self, info: Ctx, id: Id) -> Order | None:
        order = await load_one(info, info.context.loaders.orders, id, Order.from_record)
        await with_links(info, [order])
        return order

    @strawberry.field(description="Orders by id, in the order asked; an unknown id is null.")
    async def orders(self, info: Ctx, ids: Ids) -> list[Order | None]:
        orders = each(await load_each(info, info.context.loaders.orders, ids), Order.from_record)
        await with_links(info, orders)
        return orders

    @strawberry.field(description="One user by id; null if unknown.")
    async def user(self, info: Ctx, id: Id) -> User | None:
        return await load_one(info, info.context.loaders.users, id, User.from_record)

    @strawberry.field(description="Users by id, in the order asked; an unknown id is null.")
    async def users(self, info: Ctx, ids: Ids) -> list[User | None]:
        return each(await load_each(info, info.context.loaders.users, ids), User.from_record)

    @strawberry.field(description="One product by id; null if unknown.")
    async def product(self, info: Ctx, id: Id) -> Product | None:
        return (await load_products(info, [id]))[0]

    @strawberry.field(description="Products by id, in the order asked; an unknown id is "
                      "null.")
    async def products(self, info: Ctx, ids: Ids) -> list[Product | None]:
        return await load_products(info, ids)

    @strawberry.field(description="A user's dashboard: user, latest orders and reviews, "
                      "each part failing on its own.")
    def dashboard(self, user_id: Annotated[strawberry.ID, strawberry.argument(
            description="The user whose dashboard this is.")]) -> Dashboard:
        return Dashboard(user_id=user_id)
