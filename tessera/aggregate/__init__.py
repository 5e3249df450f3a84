"""REST aggregation: plan.py (config -> checked graph), engine.py (runs it),
routes.py (HTTP and stdio entry points)."""
