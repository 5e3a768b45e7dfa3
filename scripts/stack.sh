#!/usr/bin/env bash
# Build the test images and bring the docker test stack (docker-compose.test.yml) up or down.
#
#   scripts/stack.sh up       build images (cached), start fresh journals, start the stack,
#                             wait until checkout answers on 127.0.0.1:18080 (bounded)
#   scripts/stack.sh down     stop and remove the stack's containers
#   scripts/stack.sh status   the stack's containers and their state
#   scripts/stack.sh audit    no data loss: every order checkout accepted was confirmed by
#                             some payments replica (exit 1 when one was not)
#
# Env: CHAOSRUNNER_STACK_DIR (journals, default /tmp/chaosrunner-stack),
#      CHAOSRUNNER_STACK_PROJECT (compose project, default chaosrunner-test),
#      STACK_WAIT_SECONDS (default 120).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CHAOSRUNNER_STACK_DIR=${CHAOSRUNNER_STACK_DIR:-/tmp/chaosrunner-stack}
PROJECT=${CHAOSRUNNER_STACK_PROJECT:-chaosrunner-test}
CHECKOUT=http://127.0.0.1:18080
PORTS=(18080 19101 19102 19103 19104)
WAIT_SECONDS=${STACK_WAIT_SECONDS:-120}

log() { printf '[scripts/stack.sh] %s\n' "$*" >&2; }
compose() { docker-compose -p "$PROJECT" -f "$ROOT/docker-compose.test.yml" "$@"; }

answers() { # url
    python3 - "$1" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2).close()
except OSError:
    sys.exit(1)
PY
}

port_taken() { # port
    python3 - "$1" <<'PY'
import socket, sys
with socket.socket() as s:
    s.settimeout(0.5)
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

up() {
    "$ROOT/images/build.sh" shop
    compose down -t 2 --remove-orphans >/dev/null 2>&1 || true
    local port
    for port in "${PORTS[@]}"; do
        if port_taken "$port"; then
            log "127.0.0.1:$port is already taken; stop what listens there and retry"
            exit 1
        fi
    done
    mkdir -p "$CHAOSRUNNER_STACK_DIR"
    rm -f "$CHAOSRUNNER_STACK_DIR"/*.journal   # a fresh audit for every start
    compose up -d --no-build --quiet-pull 2>&1 | sed 's/^/  /' >&2
    local waited=0
    until answers "$CHECKOUT/healthz"; do
        if [ "$waited" -ge "$WAIT_SECONDS" ]; then
            log "checkout did not answer at $CHECKOUT within ${WAIT_SECONDS}s"
            compose ps >&2
            compose logs --tail 20 >&2
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "stack up: checkout $CHECKOUT, payments 127.0.0.1:19101-19104 (${waited}s)"
}

audit() {
    local accepted="$CHAOSRUNNER_STACK_DIR/checkout.journal"
    if [ ! -f "$accepted" ]; then
        log "no checkout journal at $accepted: was the stack started with scripts/stack.sh up?"
        exit 2
    fi
    local missing total
    total=$(cut -d' ' -f1 "$accepted" | sort -u | wc -l)
    missing=$(comm -23 <(cut -d' ' -f1 "$accepted" | sort -u) \
        <(cat "$CHAOSRUNNER_STACK_DIR"/payments-*.journal 2>/dev/null | cut -d' ' -f1 | sort -u) \
        | wc -l)
    echo "accepted=$total unconfirmed=$missing"
    [ "$missing" -eq 0 ]
}

case "${1:-}" in
    up) up ;;
    down) compose down -t 5 --remove-orphans ;;
    status) compose ps ;;
    audit) audit ;;
    *) echo "usage: $0 up|down|status|audit" >&2; exit 2 ;;
esac
