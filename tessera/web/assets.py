"""GraphiQL's JavaScript and CSS, served by Tessera from its own origin.

    python -m tessera.web.assets         # fetch once (make install does it); no-op when present
    python -m tessera.web.assets --check # exit 1 unless every file is in place

The files come from the npm registry's tarballs of pinned versions (no npm
needed: plain HTTPS), each checked against the registry's sha512 integrity
before anything is unpacked, and are kept in tessera/web/static/graphiql/
with their licences. Once there, GraphiQL works offline: no page Tessera
serves loads anything from another origin.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).with_name("static") / "graphiql"
REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity of the tarball
    files: dict[str, str]  # path in the tarball -> name served under /graphiql/

    @property
    def tarball(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.name}-{self.version}.tgz"


PACKAGES = (
    Package("react", "18.3.1",
            "sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==",
            {"package/umd/react.production.min.js": "react.production.min.js",
             "package/LICENSE": "LICENSE.react"}),
    Package("react-dom", "18.3.1",
            "sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==",
            {"package/umd/react-dom.production.min.js": "react-dom.production.min.js",
             "package/LICENSE": "LICENSE.react-dom"}),
    Package("graphiql", "3.8.3",
            "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
            {"package/graphiql.min.js": "graphiql.min.js",
             "package/graphiql.min.css": "graphiql.min.css",
             "package/LICENSE": "LICENSE.graphiql"}),
)
STAMP = STATIC / "versions.json"


def _stamp() -> dict[str, str]:
    return {p.name: p.version for p in PACKAGES}


def installed() -> bool:
    """Every pinned file is in place, from the pinned versions."""
    try:
        if json.loads(STAMP.read_text()) != _stamp():
            return False
    except (OSError, ValueError):
        return False
    return all((STATIC / name).is_file() for p in PACKAGES for name in p.files.values())


def _verified(package: Package, data: bytes) -> bytes:
    algorithm, _, expected = package.integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise RuntimeError(f"{package.name}@{package.version}: the tarball does not match "
                           "its pinned integrity; nothing was installed")
    return data


def fetch(timeout_s: float = 60) -> None:
    STATIC.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        with urllib.request.urlopen(package.tarball, timeout=timeout_s) as response:
            data = _verified(package, response.read())
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member, name in package.files.items():
                source = tar.extractfile(member)
                if source is None:
                    raise RuntimeError(f"{package.name}@{package.version}: no {member}")
                (STATIC / name).write_bytes(source.read())
    STAMP.write_text(json.dumps(_stamp(), indent=2) + "\n")


def main(argv: list[str]) -> int:
    if "--check" in argv:
        return 0 if installed() else 1
    if installed():
        return 0
    try:
        fetch()
    except (OSError, RuntimeError) as exc:
        print(f"tessera: could not fetch GraphiQL's files ({exc}); the gateway works, "
              "but /graphql in a browser will say they are missing. Run "
              "`python -m tessera.web.assets` again when the npm registry is reachable.",
              file=sys.stderr)
        return 0 if "--strict" not in argv else 1
    print(f"tessera: GraphiQL files installed in {STATIC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
