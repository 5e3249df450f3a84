"""The Query root of SPEC section 2."""

from __future__ import annotations

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


@strawberry.type
class Dashboard:
    """A user's page: the user, their latest orders and their reviews, fetched together."""

    user_id: strawberry.Private[str]

    @strawberry.field
    async def user(self, info: Ctx) -> User | None:
        return await load_one(info, info.context.loaders.users, self.user_id, User.from_record)

    @strawberry.field
    async def orders(self, info: Ctx) -> list[Order] | None:
        return await load_orders(info, self.user_id, 10)

    @strawberry.field
    async def reviews(self, info: Ctx) -> list[Review] | None:
        return await load_list(info, info.context.loaders.reviews_by_user, self.user_id,
                               Review.from_record)


@strawberry.type
class Query:
    @strawberry.field
    async def order(self, info: Ctx, id: strawberry.ID) -> Order | None:
        order = await load_one(info, info.context.loaders.orders, id, Order.from_record)
        await with_links(info, [order])
        return order

    @strawberry.field
    async def orders(self, info: Ctx, ids: list[strawberry.ID]) -> list[Order | None]:
        orders = each(await load_each(info, info.context.loaders.orders, ids), Order.from_record)
        await with_links(info, orders)
        return orders

    @strawberry.field
    async def user(self, info: Ctx, id: strawberry.ID) -> User | None:
        return await load_one(info, info.context.loaders.users, id, User.from_record)

    @strawberry.field
    async def users(self, info: Ctx, ids: list[strawberry.ID]) -> list[User | None]:
        return each(await load_each(info, info.context.loaders.users, ids), User.from_record)

    @strawberry.field
    async def product(self, info: Ctx, id: strawberry.ID) -> Product | None:
        return (await load_products(info, [id]))[0]

    @strawberry.field
    async def products(self, info: Ctx, ids: list[strawberry.ID]) -> list[Product | None]:
        return await load_products(info, ids)

    @strawberry.field
    def dashboard(self, user_id: strawberry.ID) -> Dashboard:
        return Dashboard(user_id=user_id)
