#!/usr/bin/env bash
# Builds a real Umami (npm `umami` 2.10.0, a Next.js app) for tests/integration/test_umami_real.py, from the npm registry only,
# into ~/.cache/surgewatch-tests/umami (or $SURGEWATCH_UMAMI_HOME), outside the repository. Idempotent: a marker
# file says the build is done. Needs node + npm; the test itself needs PostgreSQL (tests/run.sh installs both).
#
# What stands in the way of a plain `npm install umami && npm run build` here, and how this script gets past it:
# - Prisma 5.7's install downloads its native query and schema engines from Prisma's own server (not a package
#   registry: unreachable here). So: `--ignore-scripts`; the client is generated with Prisma 5.7's wasm query
#   engine (it ships inside @prisma/client on npm; `engineType = "wasm"` with the `driverAdapters` preview) over
#   @prisma/adapter-pg + pg; the CLI is pointed at placeholder engine files so it downloads nothing; Umami's
#   PostgreSQL migrations are plain SQL that the test applies with psql (no schema engine needed).
# - Umami's client wrapper (@umami/prisma-client) is patched to hand PrismaClient that adapter, and to spread
#   raw-query parameters (which the native engine did by itself).
# - The GeoIP download is skipped: Umami looks up no location for loopback clients.
# - Next.js does not compile TypeScript under node_modules/, so the app is built from a copy in app/.
set -euo pipefail

VERSION=2.10.0
HOME_DIR="${SURGEWATCH_UMAMI_HOME:-$HOME/.cache/surgewatch-tests/umami}"
APP="$HOME_DIR/app"
MARKER="$APP/.surgewatch-built-$VERSION"
[ -f "$MARKER" ] && { echo "umami $VERSION already built in $APP"; exit 0; }
command -v npm >/dev/null 2>&1 || { echo "install_umami: npm is missing" >&2; exit 1; }

mkdir -p "$HOME_DIR"
cd "$HOME_DIR"
[ -f package.json ] || echo '{"name": "surgewatch-umami-host", "private": true}' > package.json
export NEXT_TELEMETRY_DISABLED=1 CHECKPOINT_DISABLE=1
# Umami, the Prisma driver adapter and pg, and the build-time packages Umami lists as devDependencies.
npm install --no-audit --no-fund --loglevel=error --ignore-scripts --legacy-peer-deps \
  "umami@$VERSION" "@prisma/adapter-pg@5.7.0" "pg@^8.11.0" "typescript@^5.1.6" "@types/react@^18.2.41" \
  "@types/react-dom@^18.2.17" "@types/node@^20.9.0" "postcss-flexbugs-fixes@^5.0.2" "postcss-preset-env@7.8.3" \
  "@svgr/webpack@^8.1.0"

rm -rf "$APP"
cp -r node_modules/umami "$APP"
mkdir -p "$APP/prisma"
cp -r "$APP/db/postgresql/." "$APP/prisma/"
python3 - "$APP/prisma/schema.prisma" "$HOME_DIR/node_modules/@umami/prisma-client/dist/index.js" <<'EOF'
import sys
schema, wrapper = sys.argv[1], sys.argv[2]
s = open(schema).read()
old = 'generator client {\n  provider = "prisma-client-js"\n}'
assert old in s, "unexpected generator block in schema.prisma"
open(schema, "w").write(s.replace(old, 'generator client {\n  provider        = "prisma-client-js"\n'
                                       '  previewFeatures = ["driverAdapters"]\n  engineType      = "wasm"\n}'))
w = open(wrapper).read()
old = 'new client$2.PrismaClient({\n'
adapter = ('    adapter: new (require("@prisma/adapter-pg").PrismaPg)(new (require("pg").Pool)'
           '({ connectionString: process.env.DATABASE_URL })),\n')
if adapter not in w:
    assert old in w, "unexpected @umami/prisma-client build"
    w = w.replace(old, old + adapter, 1)
# Umami passes its SQL parameters as one array; the native engine spread it, the driver adapter needs them spread.
assert "$queryRawUnsafe(query, params)" in w or "$queryRawUnsafe(query, ...params)" in w
open(wrapper, "w").write(w.replace("$queryRawUnsafe(query, params)", "$queryRawUnsafe(query, ...params)"))
EOF

# Placeholder engines: prisma generate then downloads nothing (the wasm engine is what the client uses).
mkdir -p "$HOME_DIR/no-engines"
printf '#!/bin/sh\necho "no native prisma engine here" >&2\nexit 1\n' > "$HOME_DIR/no-engines/engine"
chmod +x "$HOME_DIR/no-engines/engine"
: > "$HOME_DIR/no-engines/libquery_engine.so.node"
cd "$APP"
PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING=1 PRISMA_HIDE_UPDATE_MESSAGE=1 \
  PRISMA_QUERY_ENGINE_LIBRARY="$HOME_DIR/no-engines/libquery_engine.so.node" \
  PRISMA_QUERY_ENGINE_BINARY="$HOME_DIR/no-engines/engine" PRISMA_SCHEMA_ENGINE_BINARY="$HOME_DIR/no-engines/engine" \
  DATABASE_URL="postgresql://umami@127.0.0.1:1/umami" \
  node "$HOME_DIR/node_modules/prisma/build/index.js" generate >/dev/null
test -f "$HOME_DIR/node_modules/.prisma/client/query-engine.wasm"

# The API routes and pages, compiled once (a few minutes on 2 cores); tests run `next start` on the result.
DATABASE_URL="postgresql://umami@127.0.0.1:1/umami" node "$HOME_DIR/node_modules/next/dist/bin/next" build >build.log 2>&1 \
  || { tail -40 build.log >&2; exit 1; }
touch "$MARKER"
echo "umami $VERSION built in $APP"
