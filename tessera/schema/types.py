"""The GraphQL object types of SPEC section 2.

Each type is built from one backend record (`from_record`), which checks the
record's shape: a record a backend got wrong is a BACKEND_BAD_RESPONSE on the
field that asked for it, not a crash. Resolvers are thin: read the parent, ask
a loader, build the type. Cross-service fields are nullable; their failures
become errors on their own paths (graphql-core does that from the exception).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, TypeVar

import strawberry

from ..errors import BackendBadResponse
from .lookahead import Ctx, Links, fresh, linked, prefetch, selected

T = TypeVar("T")


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


def _one(build: Callable[[Any], T]) -> Callable[[Any], T | None]:
    return lambda record: None if record is None else build(record)


def _all(build: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    return lambda records: [build(record) for record in records]


def _level(level: int | None) -> int | None:
    return level


def _positive(level: int | None) -> bool | None:
    return None if level is None else level > 0


async def load_one(info: Ctx, loader: Any, key: str | None,
                   build: Callable[[Any], T]) -> T | None:
    """Load one record (None for no key or no record) and build its type."""
    value = linked(info, loader, key, _one(build))
    return await value if inspect.isawaitable(value) else value


async def load_list(info: Ctx, loader: Any, key: Any, build: Callable[[Any], T]) -> list[T]:
    value = linked(info, loader, key, _all(build))
    return await value if inspect.isawaitable(value) else value


async def load_each(info: Ctx, loader: Any, keys: Iterable[str]) -> list[Any]:
    """Load keys together; each slot holds its value or its own exception."""
    values = await asyncio.gather(*(loader.load(k) for k in keys), return_exceptions=True)
    return [fresh(info, value, i) for i, value in enumerate(values)]


@strawberry.type(description="A rating and comment on a product by a user (reviews service).")
class Review:
    id: strawberry.ID = strawberry.field(description="The review's id.")
    rating: int = strawberry.field(description="The rating given, as the reviews service "
                                   "stores it (1 to 5 in the demo data).")
    body: str | None = strawberry.field(description="The review's text, if any.")
    user_id: strawberry.Private[str | None]
    product_id: strawberry.Private[str | None]

    @classmethod
    def from_record(cls, r: Any) -> Review:
        return cls(id=strawberry.ID(_id(r, "reviews")),
                   rating=_check(r, "reviews", "rating", int, required=True),
                   body=_check(r, "reviews", "body", str),
                   user_id=_opt_id(r, "reviews", "user_id"),
                   product_id=_opt_id(r, "reviews", "product_id"))

    @strawberry.field(description="The user who wrote it (users service); null if unknown.")
    def author(self, info: Ctx) -> User | None:
        return linked(info, info.context.loaders.users, self.user_id, _one(User.from_record))

    @strawberry.field(description="The product reviewed (products service); null if "
                      "unknown.")
    def product(self, info: Ctx) -> Product | None:
        return linked(info, info.context.loaders.products, self.product_id,
                      _one(Product.from_record))


def _average(records: list[Any]) -> float | None:
    ratings = [Review.from_record(r).rating for r in records]
    return round(sum(ratings) / len(ratings), 2) if ratings else None


@strawberry.type(description="A product of the catalogue (products service), with its stock "
                 "(inventory service) and reviews (reviews service).")
class Product:
    id: strawberry.ID = strawberry.field(description="The product's id.")
    name: str = strawberry.field(description="The product's name.")
    price: float | None = strawberry.field(description="The current unit price.")
    description: str | None = strawberry.field(description="A longer description, if any.")

    @classmethod
    def from_record(cls, r: Any) -> Product:
        return cls(id=strawberry.ID(_id(r, "products")),
                   name=_check(r, "products", "name", str, required=True),
                   price=_number(r, "products", "price"),
                   description=_check(r, "products", "description", str))

    @strawberry.field(description="Units in stock (inventory service); null if unknown.")
    def stock(self, info: Ctx) -> int | None:
        return linked(info, info.context.loaders.stock, self.id, _level)

    @strawberry.field(description="Whether any unit is in stock (inventory service).")
    def in_stock(self, info: Ctx) -> bool | None:
        return linked(info, info.context.loaders.stock, self.id, _positive)

    @strawberry.field(description="The product's reviews (reviews service).")
    def reviews(self, info: Ctx) -> list[Review] | None:
        return linked(info, info.context.loaders.reviews_by_product, self.id,
                      _all(Review.from_record))

    @strawberry.field(description="The mean rating of its reviews, to two decimals; null "
                      "without reviews.")
    def average_rating(self, info: Ctx) -> float | None:
        return linked(info, info.context.loaders.reviews_by_product, self.id, _average)


def _product_id(subject: Any) -> list[str]:
    return [subject]


# What each type's linked fields load, per subject (see lookahead.prefetch).
PRODUCT_LINKS: Links = {  # subjects: product ids
    "stock": ("stock", _product_id), "inStock": ("stock", _product_id),
    "reviews": ("reviews_by_product", _product_id),
    "averageRating": ("reviews_by_product", _product_id),
}


@strawberry.type(description="One line of an order: a product and how many of it.")
class OrderItem:
    product_id: strawberry.ID = strawberry.field(description="The id of the product ordered.")
    quantity: int = strawberry.field(description="How many units were ordered.")
    unit_price: float = strawberry.field(description="The price of one unit when ordered.")

    @classmethod
    def from_record(cls, r: Any) -> OrderItem:
        if not isinstance(r, dict):
            raise BackendBadResponse("orders", "sent an order item that is not an object")
        return cls(product_id=strawberry.ID(_id(r, "orders", "product_id")),
                   quantity=_check(r, "orders", "quantity", int, required=True),
                   unit_price=_number(r, "orders", "unit_price", required=True) or 0.0)

    @strawberry.field(description="The product ordered (products service); null if unknown.")
    def product(self, info: Ctx) -> Product | None:
        return linked(info, info.context.loaders.products, self.product_id,
                      _one(Product.from_record))

    @strawberry.field(description="Units of the product in stock now (inventory service).")
    def stock(self, info: Ctx) -> int | None:
        return linked(info, info.context.loaders.stock, self.product_id, _level)

    @strawberry.field(description="Whether the product is in stock now (inventory service).")
    def in_stock(self, info: Ctx) -> bool | None:
        return linked(info, info.context.loaders.stock, self.product_id, _positive)


def _item_product(item: OrderItem) -> list[str]:
    return [item.product_id]


ITEM_LINKS: Links = {"product": ("products", _item_product), "stock": ("stock", _item_product),
                     "inStock": ("stock", _item_product)}


@strawberry.type(description="An order placed by a user (orders service).")
class Order:
    id: strawberry.ID = strawberry.field(description="The order's id.")
    status: str | None = strawberry.field(description="Where the order is, as the orders "
                                          "service says (e.g. PLACED, SHIPPED).")
    created_at: str | None = strawberry.field(description="When it was placed (ISO 8601).")
    total: float | None = strawberry.field(description="The order's total price.")
    items: list[OrderItem] = strawberry.field(description="What was ordered, line by line.")
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

    def product_ids(self) -> list[str]:
        """The order's distinct products, in item order."""
        return list(dict.fromkeys(item.product_id for item in self.items))

    @strawberry.field(description="The user who placed it (users service); null if unknown "
                      "or if the users service failed (see errors).")
    def user(self, info: Ctx) -> User | None:
        return linked(info, info.context.loaders.users, self.user_id, _one(User.from_record))

    @strawberry.field(description="The order's distinct products, in item order (products "
                      "service); an unknown product is null.")
    async def products(self, info: Ctx) -> list[Product | None]:
        return await load_products(info, self.product_ids())


ORDER_LINKS: Links = {"user": ("users", lambda order: [order.user_id]),
                      "products": ("products", Order.product_ids)}


async def load_products(info: Ctx, ids: Sequence[str]) -> list[Product | None]:
    """Products by id, with what their selected fields need loaded in the same hop."""
    records, _ = await asyncio.gather(load_each(info, info.context.loaders.products, ids),
                                      prefetch(info, [(PRODUCT_LINKS, selected(info), ids)]))
    return each(records, Product.from_record)


async def with_links(info: Ctx, orders: list[Any]) -> None:
    """Load what the selected fields of these orders and their items need, together."""
    items = [item for order in orders if isinstance(order, Order) for item in order.items]
    await prefetch(info, [(ORDER_LINKS, selected(info), orders),
                          (ITEM_LINKS, selected(info, "items"), items)])


@strawberry.type(description="A customer (users service), with their orders and reviews.")
class User:
    id: strawberry.ID = strawberry.field(description="The user's id.")
    name: str = strawberry.field(description="The user's name.")
    email: str | None = strawberry.field(description="The user's email address, if known.")
    address: str | None = strawberry.field(description="The user's postal address, if known.")

    @classmethod
    def from_record(cls, r: Any) -> User:
        return cls(id=strawberry.ID(_id(r, "users")),
                   name=_check(r, "users", "name", str, required=True),
                   email=_check(r, "users", "email", str),
                   address=_check(r, "users", "address", str))

    @strawberry.field(description="The user's latest orders, newest first (orders service).")
    async def orders(self, info: Ctx, limit: Annotated[int, strawberry.argument(
            description="How many orders, from 1 to 100.")] = 10) -> list[Order] | None:
        return await load_orders(info, self.id, limit)

    @strawberry.field(description="The reviews the user wrote (reviews service).")
    def reviews(self, info: Ctx) -> list[Review] | None:
        return linked(info, info.context.loaders.reviews_by_user, self.id,
                      _all(Review.from_record))


async def load_orders(info: Ctx, user_id: str, limit: int) -> list[Order]:
    """A user's latest orders, with what their selected fields need loaded."""
    orders = await load_list(info, info.context.loaders.orders_by_user, (user_id, limit),
                             Order.from_record)
    await with_links(info, orders)
    return orders
