"""The shop plus a sixth service, shipments, linked from Order: written with the
public API only, with no edit under tessera/.

    shipments  GET /shipments?order_ids=1,2  ->  [{id, order_id, carrier, status, eta}]

`orders(ids: [20 ids]) { shipments { carrier } }` costs one orders call and one
shipments call; with shipments down, each order's `shipments` is null with an
error naming the service.
"""

from __future__ import annotations

from pathlib import Path

import strawberry

from tessera.compose import Rest, fixtures, link
from tessera.shop.graph import graph as shop

SHIPMENTS = Rest("shipments", many="/shipments", param="order_ids", group_by="order_id",
                 list_size=2, name="shipments_by_order")


@strawberry.type(description="A parcel on its way (shipments service).")
class Shipment:
    id: strawberry.ID = strawberry.field(description="The shipment's id.")
    carrier: str = strawberry.field(description="Who carries it.")
    status: str = strawberry.field(description="Where it is: LABEL_CREATED, IN_TRANSIT, "
                                   "DELIVERED.")
    eta: str | None = strawberry.field(description="When it should arrive (ISO date).")


graph = shop.extend(
    "Order",
    shipments=(list[Shipment] | None,
               link(SHIPMENTS, key="id", description="The order's shipments (shipments "
                    "service); null if that service failed.")),
    demo=shop.demo + fixtures(Path(__file__).parent / "data") if shop.demo else None,
    name="shop+shipments",
)
