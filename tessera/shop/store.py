"""The demo services' data: an in-memory SQLite database, seeded deterministically.

It holds the records users know from the docs (orders 42 and 123 and their users,
products and stock) and a generated catalogue large enough to benchmark against:
5,000 users, 2,000 products, 20,000 orders, 10,000 reviews. User 7 has 25 orders.
"""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta

USERS = 5000
PRODUCTS = 2000
ORDERS = 20000
REVIEWS = 10000
SEED = 2026

_SCHEMA = """
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, address TEXT);
CREATE TABLE products (id TEXT PRIMARY KEY, name TEXT NOT NULL, price REAL, description TEXT);
CREATE TABLE inventory (product_id TEXT PRIMARY KEY, stock INTEGER NOT NULL);
CREATE TABLE orders (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, status TEXT NOT NULL,
                     created_at TEXT NOT NULL, total REAL NOT NULL, items TEXT NOT NULL);
CREATE INDEX orders_by_user ON orders (user_id, created_at DESC);
CREATE TABLE reviews (id TEXT PRIMARY KEY, product_id TEXT NOT NULL, user_id TEXT NOT NULL,
                      rating INTEGER NOT NULL, body TEXT);
CREATE INDEX reviews_by_product ON reviews (product_id);
CREATE INDEX reviews_by_user ON reviews (user_id);
"""

_FIRST = ["Alice", "Aziz", "Bea", "Chen", "Dilnoza", "Emil", "Fatima", "Goran", "Hana", "Ivan",
          "Jia", "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rustam", "Sofia"]
_LAST = ["Smith", "Karimov", "Lee", "Novak", "Okafor", "Rossi", "Tanaka", "Weber", "Yusupova"]
_CITIES = ["Tashkent", "Lyon", "Osaka", "Accra", "Porto", "Tallinn", "Austin", "Pune"]
_ADJ = ["Compact", "Deluxe", "Classic", "Smart", "Rugged", "Mini", "Ultra", "Eco"]
_NOUN = ["Lamp", "Kettle", "Backpack", "Speaker", "Notebook", "Mug", "Charger", "Chair"]
_STATUS = ["PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"]
_BODIES = ["Does the job.", "Would buy again.", "Arrived late but works.", "Excellent value.",
           "Not what I expected.", "Solid build quality."]
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def open_store() -> sqlite3.Connection:
    """A new, fully seeded in-memory database (about half a second)."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.executescript(_SCHEMA)
    rng = random.Random(SEED)
    with db:
        _seed_known(db)
        _seed_catalogue(db, rng)
    return db


def _seed_known(db: sqlite3.Connection) -> None:
    db.executemany("INSERT INTO users VALUES (?,?,?,?)", [
        ("7", "Aziz", "aziz@example.com", "12 Main St, Tashkent"),
        ("456", "Alice", "alice@example.com", "221 Baker Street, London"),
    ])
    db.executemany("INSERT INTO products VALUES (?,?,?,?)", [
        ("1", "Widget", 9.99, "The original widget."),
        ("2", "Gadget", 24.5, "A gadget for every drawer."),
        ("3", "Gizmo", 5.0, "Small, shiny, useful."),
        ("A1", "Green Tea", 15.0, "Loose-leaf green tea, 250 g."),
        ("B2", "Teapot", 40.0, "Cast-iron teapot, 0.8 l."),
    ])
    db.executemany("INSERT INTO inventory VALUES (?,?)",
                   [("1", 42), ("2", 7), ("3", 0), ("A1", 120), ("B2", 0)])
    _insert_order(db, "42", "7", "SHIPPED", _iso(_EPOCH + timedelta(days=300)),
                  [("A1", 2, 15.0), ("B2", 1, 40.0)])
    _insert_order(db, "123", "456", "DELIVERED", _iso(_EPOCH + timedelta(days=200)),
                  [("1", 1, 9.99), ("2", 2, 24.5), ("3", 1, 5.0)])
    db.executemany("INSERT INTO reviews VALUES (?,?,?,?,?)", [
        ("r1", "1", "456", 5, "Best widget I have owned."),
        ("r2", "A1", "7", 4, "Fresh and fragrant."),
        ("r3", "B2", "7", 5, "Keeps the tea hot."),
    ])


def _insert_order(db: sqlite3.Connection, order_id: str, user_id: str, status: str,
                  created_at: str, items: list[tuple[str, int, float]]) -> None:
    rows = [{"product_id": p, "quantity": q, "unit_price": u} for p, q, u in items]
    total = round(sum(q * u for _, q, u in items), 2)
    db.execute("INSERT INTO orders VALUES (?,?,?,?,?,?)",
               (order_id, user_id, status, created_at, total, json.dumps(rows)))


def _seed_catalogue(db: sqlite3.Connection, rng: random.Random) -> None:
    users = [(str(i), f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", f"user{i}@example.com",
              f"{rng.randint(1, 400)} Market St, {rng.choice(_CITIES)}")
             for i in range(1, USERS + 1) if i not in (7, 456)]
    db.executemany("INSERT INTO users VALUES (?,?,?,?)", users)
    products = [(str(i), f"{rng.choice(_ADJ)} {rng.choice(_NOUN)} {i}",
                 round(rng.uniform(2, 300), 2), f"Catalogue item number {i}.")
                for i in range(4, PRODUCTS + 1)]
    db.executemany("INSERT INTO products VALUES (?,?,?,?)", products)
    db.executemany("INSERT INTO inventory VALUES (?,?)",
                   [(p[0], rng.choice([0, rng.randint(1, 500)])) for p in products])
    prices = {p[0]: p[2] for p in products}
    product_ids = list(prices)
    for n in range(ORDERS):
        # The first 24 generated orders belong to user 7, so that user has 25 in all.
        user_id = "7" if n < 24 else str(rng.randint(1, USERS))
        chosen = rng.sample(product_ids, rng.randint(1, 5))
        items = [(p, rng.randint(1, 4), prices[p]) for p in chosen]
        created = _EPOCH + timedelta(minutes=rng.randint(0, 400 * 24 * 60))
        _insert_order(db, str(1000 + n), user_id, rng.choice(_STATUS), _iso(created), items)
    reviews = [(f"r{1000 + n}", rng.choice(product_ids), str(rng.randint(1, USERS)),
                rng.randint(1, 5), rng.choice(_BODIES)) for n in range(REVIEWS)]
    db.executemany("INSERT INTO reviews VALUES (?,?,?,?,?)", reviews)
