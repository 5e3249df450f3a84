#!/bin/sh
# make docker-smoke: build the image, start the compose stack, query it, stop it.
# PYTHON_IMAGE=local/debian make docker-smoke   # another base image
set -eu
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1; then
    echo "docker-smoke: SKIPPED: no Docker daemon answers here (docker info failed)" >&2
    exit 0
fi
if ! docker compose version >/dev/null 2>&1; then
    echo "docker-smoke: SKIPPED: Docker Compose v2 ('docker compose') is not installed" >&2
    exit 0
fi
COMPOSE="docker compose -f docker/compose.yaml -p tessera-smoke"
trap '$COMPOSE down --remove-orphans >/dev/null 2>&1 || true' EXIT
$COMPOSE up --build --detach --wait
answer=$(curl -fsS http://127.0.0.1:8000/graphql -H 'content-type: application/json' \
    -d '{"query":"{ order(id: \"42\") { status user { name } items { product { name } stock } } }"}')
echo "$answer"
echo "$answer" | grep -q '"name":"Aziz"' && echo "$answer" | grep -q '"stock":120' \
    || { echo "docker-smoke: FAILED: unexpected answer" >&2; exit 1; }
for service in gateway orders users products inventory reviews; do
    printf '%s: ' "$service"
    docker inspect --format '{{.State.Health.Status}}' "$($COMPOSE ps -q "$service")"
done
echo "docker-smoke: ok"
