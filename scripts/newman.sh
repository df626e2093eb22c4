#!/usr/bin/env bash
# Runs the Postman collection (postman/tienda.postman_collection.json) with
# newman against a tienda built from this tree, started on the default ports
# (8080-8082) with a fresh data directory, and exits with newman's status.
#
#   bash scripts/newman.sh [newman options…]     (or: task postman -- …)
#
# newman is installed from npm into postman/.newman/ on first use (needs
# Node.js >= 16 and npm). The JUnit report goes to postman/.newman/junit.xml.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/tienda-server.sh
. scripts/tienda-server.sh

NEWMAN_VERSION=6.2.2
NEWMAN_DIR=postman/.newman
NEWMAN=$NEWMAN_DIR/node_modules/.bin/newman
JUNIT=$NEWMAN_DIR/junit.xml

installed_version() {
  node -p "require('./$NEWMAN_DIR/node_modules/newman/package.json').version" 2>/dev/null || true
}

command -v node >/dev/null && command -v npm >/dev/null || die "newman needs Node.js and npm"
if [[ ! -x $NEWMAN || $(installed_version) != "$NEWMAN_VERSION" ]]; then
  say "installing newman@$NEWMAN_VERSION into $NEWMAN_DIR"
  timeout 600 npm install --prefix "$NEWMAN_DIR" --no-save --no-audit --no-fund --loglevel=error \
    "newman@$NEWMAN_VERSION" >&2 || die "npm install newman@$NEWMAN_VERSION failed"
fi

tienda_setup
tienda_ports_free
tienda_build
tienda_start

status=0
run_bounded 300 "$NEWMAN" run postman/tienda.postman_collection.json \
  --reporters cli,junit --reporter-junit-export "$JUNIT" \
  --timeout-request 30000 --timeout 240000 "$@" || status=$?
[[ $status -ne 124 ]] || say "newman did not finish within 300s"
say "newman exited with status $status; JUnit report: $JUNIT"

tienda_stop || true
exit "$status"
