# tests/browser/node-env.sh: finds the Node packages the OpenAPI and browser
# tests use (package.json / package-lock.json in this folder, pinned).
#
#   . "$SRCDIR/tests/browser/node-env.sh"
#   node_env || skip_reason=$NODE_WHY
#
# node_env sets NODE_PATH and returns 0, or returns 1 with NODE_WHY saying
# what is missing. It looks in tests/browser/node_modules (tools/setup-debian
# runs `npm ci` there), else installs the locked versions once into
# ${TMPDIR:-/tmp}/mlfcgi-node-<hash of the lock file> (from npm's cache when
# it has them), so the build tree stays clean for make distcheck.

node_env() {
    local src=$SRCDIR/tests/browser d sum
    NODE_WHY=""
    if ! command -v node >/dev/null 2>&1; then
        NODE_WHY="node not found (Debian package: nodejs)"
        return 1
    fi
    for d in "$src/node_modules" "${MLFCGI_NODE_MODULES:-/nonexistent}"; do
        if [ -d "$d/playwright-core" ] && [ -d "$d/@apidevtools/swagger-parser" ]; then
            export NODE_PATH=$d
            return 0
        fi
    done
    if ! command -v npm >/dev/null 2>&1; then
        NODE_WHY="npm not found (Debian package: npm); or run tools/setup-debian"
        return 1
    fi
    sum=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-12)
    d=${TMPDIR:-/tmp}/mlfcgi-node-$sum
    mkdir -p "$d" || { NODE_WHY="cannot create $d"; return 1; }
    # Two tests may get here at once: one installs, the other waits.
    if ! (
        flock -w 300 9 || exit 1
        [ -d "$d/node_modules/playwright-core" ] && exit 0
        cp "$src/package.json" "$src/package-lock.json" "$d/" &&
        cd "$d" &&
        timeout 300 npm ci --prefer-offline --ignore-scripts --no-audit \
            --no-fund >npm-ci.log 2>&1
    ) 9>"$d.lock"; then
        NODE_WHY="npm ci of tests/browser/package-lock.json failed (see $d/npm-ci.log); run tools/setup-debian"
        return 1
    fi
    export NODE_PATH=$d/node_modules
}
