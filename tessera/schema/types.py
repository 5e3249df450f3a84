"""The GraphQL object types of SPEC section 2.

Each type is built from one backend record (`from_record`), which checks the
record's shape: a record a backend got wrong is a BACKEND_BAD_RESPONSE on the
field that asked for it, not a crash. Resolvers are thin: read the parent, ask
a loader, build the type. Cross-service fields are nullable; their failures
become errors on their own paths (graphql-core does that from the exception).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info

from ..context import Context
from ..errors import BackendBadResponse
from ..resilience import Stale

T = TypeVar("T")
Ctx = Info[Context, None]


def _check(record: Any, service: str, key: str, kinds: type | tuple[type, ...],
           required: bool = False) -> Any:
    value = record.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise BackendBadResponse(service, f"sent a record whose '{key}' is missing or wrong")
    return value


def _number(record: Any, service: str, key: str, required: bool = False) -> float | None:
    value = _check(record, service, key, (int, float), required)
    return None if value is None else float(value)


def _id(record: Any, service: str, key: str = "id") -> str:
    return str(_check(record, service, key, (str, int), required=True))


def _opt_id(record: Any, service: str, key: str) -> str | None:
    value = _check(record, service, key, (str, int))
    return None if value is None else str(value)


def each(values: Iterable[Any], build: Callable[[Any], T]) -> list[Any]:
    """Build each loaded value; a failed or malformed one stays an exception in its
    slot, so graphql-core nulls that list item alone and reports it at its path."""
    out: list[T | Exception | None] = []  # exceptions stay in their slots
    for value in values:
        if value is None or isinstance(value, Exception):
            out.append(value)
            continue
        try:
            out.append(build(value))
        except BackendBadResponse as exc:
            out.append(exc)
    return out


def fresh(info: Ctx, value: Any, index: int | None = None) -> Any:
    """A loaded value as it is; a `Stale` one unwrapped and reported at this field's
    path (`extensions.tessera.stale`), so nobody mistakes it for fresh data."""
    if not isinstance(value, Stale):
        return value
    path = info.path.as_list() + ([] if index is None else [index])
    info.context.scope.report.served_stale(path, value.service, value.age_s)
    return value.value


async def load(info: Ctx, loader: Any, key: Any) -> Any:
    return fresh(info, await loader.load(key))


async def load_one(info: Ctx, loader: Any, key: str | None,
                   build: Callable[[Any], T]) -> T | None:
    """Load one record (None for no key or no record) and build its type."""
    if key is None:
        return None
    record = await load(info, loader, key)
    return None if record is None else build(record)


async def load_list(info: Ctx, loader: Any, key: Any, build: Callable[[Any], T]) -> list[T]:
    return [build(record) for record in await load(info, loader, key)]


async def load_each(info: Ctx, loader: Any, keys: Iterable[str]) -> list[Any]:
    """Load keys together; each slot holds its value or its own exception."""
    values = await asyncio.gather(*(loader.load(k) for k in keys), return_exceptions=True)
    return [fresh(info, value, i) for i, value in enumerate(values)]


async def _stock(info: Ctx, product_id: str) -> int | None:
    level: int | None = await load(info, info.context.loaders.stock, product_id)
    return level


async def _in_stock(info: Ctx, product_id: str) -> bool | None:
    level = await _stock(info, product_id)
    return None if level is None else level > 0


@strawberry.type
class Review:
    id: strawberry.ID
    rating: int
    body: str | None
    user_id: strawberry.Private[str | None]
    product_id: strawberry.Private[str | None]

    @classmethod
    def from_record(cls, r: Any) -> Review:
        return cls(id=strawberry.ID(_id(r, "reviews")),
                   rating=_check(r, "reviews", "rating", int, required=True),
                   body=_check(r, "reviews", "body", str),
                   user_id=_opt_id(r, "reviews", "user_id"),
                   product_id=_opt_id(r, "reviews", "product_id"))

    @strawberry.field
    async def author(self, info: Ctx) -> User | None:
        return await load_one(info, info.context.loaders.users, self.user_id, User.from_record)

    @strawberry.field
    async def product(self, info: Ctx) -> Product | None:
        return await load_one(info, info.context.loaders.products,
                              self.product_id, Product.from_record)


@strawberry.type
class Product:
    id: strawberry.ID
    name: str
    price: float | None
    description: str | None

    @classmethod
    def from_record(cls, r: Any) -> Product:
        return cls(id=strawberry.ID(_id(r, "products")),
                   name=_check(r, "products", "name", str, required=True),
                   price=_number(r, "products", "price"),
                   description=_check(r, "products", "description", str))

    @strawberry.field
    async def stock(self, info: Ctx) -> int | None:
        return await _stock(info, self.id)

    @strawberry.field
    async def in_stock(self, info: Ctx) -> bool | None:
        return await _in_stock(info, self.id)

    @strawberry.field
    async def reviews(self, info: Ctx) -> list[Review] | None:
        return await load_list(info, info.context.loaders.reviews_by_product,
                               self.id, Review.from_record)

    @strawberry.field
    async def average_rating(self, info: Ctx) -> float | None:
        records = await load(info, info.context.loaders.reviews_by_product, self.id)
        ratings = [Review.from_record(r).rating for r in records]
        return round(sum(ratings) / len(ratings), 2) if ratings else None


@strawberry.type
class OrderItem:
    product_id: strawberry.ID
    quantity: int
    unit_price: float

    @classmethod
    def from_record(cls, r: Any) -> OrderItem:
        if not isinstance(r, dict):
            raise BackendBadResponse("orders", "sent an order item that is not an object")
        return cls(product_id=strawberry.ID(_id(r, "orders", "product_id")),
                   quantity=_check(r, "orders", "quantity", int, required=True),
                   unit_price=_number(r, "orders", "unit_price", required=True) or 0.0)

    @strawberry.field
    async def product(self, info: Ctx) -> Product | None:
        return await load_one(info, info.context.loaders.products,
                              self.product_id, Product.from_record)

    @strawberry.field
    async def stock(self, info: Ctx) -> int | None:
        return await _stock(info, self.product_id)

    @strawberry.field
    async def in_stock(self, info: Ctx) -> bool | None:
        return await _in_stock(info, self.product_id)


@strawberry.type
class Order:
    id: strawberry.ID
    status: str | None
    created_at: str | None
    total: float | None
    items: list[OrderItem]
    user_id: strawberry.Private[str | None]

    @classmethod
    def from_record(cls, r: Any) -> Order:
        items = _check(r, "orders", "items", list) or []
        return cls(id=strawberry.ID(_id(r, "orders")),
                   status=_check(r, "orders", "status", str),
                   created_at=_check(r, "orders", "created_at", str),
                   total=_number(r, "orders", "total"),
                   items=[OrderItem.from_record(item) for item in items],
                   user_id=_opt_id(r, "orders", "user_id"))

    @strawberry.field
    async def user(self, info: Ctx) -> User | None:
        return await load_one(info, info.context.loaders.users, self.user_id, User.from_record)

    @strawberry.field
    async def products(self, info: Ctx) -> list[Product | None]:
        """The order's distinct products, in item order."""
        ids = list(dict.fromkeys(item.product_id for item in self.items))
        return each(await load_each(info, info.context.loaders.products, ids), Product.from_record)


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    email: str | None
    address: str | None

    @classmethod
    def from_record(cls, r: Any) -> User:
        return cls(id=strawberry.ID(_id(r, "users")),
                   name=_check(r, "users", "name", str, required=True),
                   email=_check(r, "users", "email", str),
                   address=_check(r, "users", "address", str))

    @strawberry.field
    async def orders(self, info: Ctx, limit: int = 10) -> list[Order] | None:
        return await load_list(info, info.context.loaders.orders_by_user, (self.id, limit),
                               Order.from_record)

    @strawberry.field
    async def reviews(self, info: Ctx) -> list[Review] | None:
        return await load_list(info, info.context.loaders.reviews_by_user,
                               self.id, Review.from_record)

