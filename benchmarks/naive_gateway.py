"""The benchmark's baseline: Tessera with its loaders turned into plain per-field
calls (no batching, no per-request cache), served the way `tessera serve` serves.

    TESSERA_CONFIG=bench.toml python benchmarks/naive_gateway.py --port 8300

It exists to show what batching saves, in calls and in time; never serve it.
"""

from __future__ import annotations

import argparse

import uvicorn

from tessera.app import create_app
from tessera.config import load_settings
from tessera.web.server import uvicorn_options


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = load_settings()
    uvicorn.run(create_app(settings, batching=False), host="127.0.0.1", port=args.port,
                **uvicorn_options(settings))


if __name__ == "__main__":
    main()
