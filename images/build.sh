#!/usr/bin/env bash
# Build the local test images (no registry is reachable, so nothing is pulled):
#
#   chaosrunner-busybox:test  FROM scratch + Debian's busybox-static (simple containers)
#   chaosrunner-pybase:test   debootstrap --variant=minbase + python3, via `docker import`
#   chaosrunner-shop:test     pybase + a venv with chaosrunner's dependencies + the package
#
# Usage: images/build.sh [busybox|pybase|shop|all]...   (default: all)
# Each image carries a content hash label; a build is skipped when the image with the same
# hash exists, so calling this from every test session costs a few `docker inspect`s.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HASH_LABEL=org.chaosrunner.content-hash
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PYBASE_PACKAGES=python3,python3-venv
# Bump a recipe's version when its steps change in a way the hashed inputs do not show.
BUSYBOX_RECIPE=1
PYBASE_RECIPE=1
SHOP_RECIPE=1
export DOCKER_BUILDKIT=0

log() { printf '[images/build.sh] %s\n' "$*" >&2; }

current_hash() {
    docker image inspect -f "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true
}

up_to_date() { # image hash
    if [ "$(current_hash "$1")" = "$2" ]; then
        log "$1 is up to date (${2:0:12})"
        return 0
    fi
    return 1
}

hash_stdin() { sha256sum | cut -d' ' -f1; }

quietly() { # run a command, show its output only when it fails
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        log "failed: $*"
        exit 1
    fi
}

busybox_binary() {
    local bin=/bin/busybox
    if [ ! -x "$bin" ] || ldd "$bin" >/dev/null 2>&1; then
        log "$bin is missing or not static: apt-get install busybox-static"
        exit 1
    fi
    echo "$bin"
}

build_busybox() {
    local image=chaosrunner-busybox:test bin hash ctx applet
    bin=$(busybox_binary)
    hash=$({ echo "recipe $BUSYBOX_RECIPE"; cat "$ROOT/images/busybox/Dockerfile" "$bin"; } | hash_stdin)
    up_to_date "$image" "$hash" && return
    log "building $image"
    ctx=$(mktemp -d)
    mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/www" "$ctx/rootfs/etc"
    chmod 1777 "$ctx/rootfs/tmp"
    cp "$bin" "$ctx/rootfs/bin/busybox"
    for applet in $("$bin" --list); do
        [ "$applet" = busybox ] || ln -s busybox "$ctx/rootfs/bin/$applet"
    done
    echo ok >"$ctx/rootfs/www/index.html"
    echo 'root:x:0:0:root:/:/bin/sh' >"$ctx/rootfs/etc/passwd"
    echo 'root:x:0:' >"$ctx/rootfs/etc/group"
    cp "$ROOT/images/busybox/Dockerfile" "$ctx/Dockerfile"
    quietly docker build --label "$HASH_LABEL=$hash" -t "$image" "$ctx"
    rm -rf "$ctx"
}

pybase_hash() {
    echo "recipe $PYBASE_RECIPE $SUITE $PYBASE_PACKAGES" | hash_stdin
}

build_pybase() {
    local image=chaosrunner-pybase:test hash root
    hash=$(pybase_hash)
    up_to_date "$image" "$hash" && return
    log "building $image with debootstrap ($SUITE, minbase + $PYBASE_PACKAGES)"
    root=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "umount -R '$root/proc' '$root/sys' 2>/dev/null || true; rm -rf --one-file-system '$root'" RETURN
    debootstrap --variant=minbase --include="$PYBASE_PACKAGES" "$SUITE" "$root" "$MIRROR" \
        >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; exit 1; }
    rm -f "$root.log"
    # Docs, manuals, locales and package caches are dead weight in a test image.
    rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* \
        "$root"/var/log/*
    tar -C "$root" --numeric-owner -c . | docker import \
        --change "LABEL $HASH_LABEL=$hash" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python3"]' - "$image" >/dev/null
}

shop_requirements() {
    python3 - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
}

build_shop() {
    local image=chaosrunner-shop:test hash ctx
    ctx=$(mktemp -d)
    cp "$ROOT/images/shop/Dockerfile" "$ctx/Dockerfile"
    shop_requirements >"$ctx/requirements.txt"
    tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -c chaosrunner | tar -C "$ctx" -x
    hash=$({ echo "recipe $SHOP_RECIPE $(pybase_hash)"; cat "$ctx/Dockerfile" "$ctx/requirements.txt";
             (cd "$ctx" && find chaosrunner -type f | LC_ALL=C sort | xargs sha256sum); } | hash_stdin)
    if up_to_date "$image" "$hash"; then
        rm -rf "$ctx"
        return
    fi
    log "building $image"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
    quietly docker build --network host --build-arg BASE=chaosrunner-pybase:test \
        --label "$HASH_LABEL=$hash" -t "$image" "$ctx"
    rm -rf "$ctx"
}

main() {
    local targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=(all)
    if ! docker info >/dev/null 2>&1; then
        log "no Docker engine answers (docker info failed): start dockerd first"
        exit 1
    fi
    local target
    for target in "${targets[@]}"; do
        case "$target" in
            busybox) build_busybox ;;
            pybase) build_pybase ;;
            shop) build_pybase; build_shop ;;
            all) build_busybox; build_pybase; build_shop ;;
            *) log "unknown image '$target'; use busybox, pybase, shop or all"; exit 2 ;;
        esac
    done
    # Old builds of our images lose their tag on rebuild; drop those leftovers.
    docker image prune -f --filter "label=$HASH_LABEL" >/dev/null
}

main "$@"
