"""The shop: Tessera's default graph (orders, users, products, inventory, reviews),
written with the public declaration API only (`graph.py`), with its demo services
(`services.py`, over `store.py`) and default REST routes (`routes.json`)."""
