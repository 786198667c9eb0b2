# The `lifeboat` image: PostgreSQL 15 with the lifeboat CLI beside it.
#
# One image serves two roles in docker-compose.yml, because both need
# PostgreSQL and Lifeboat at the same versions side by side:
#   - the primary, whose archive_command runs `lifeboat archive-push`;
#   - the worker for host db-recovery-1, which runs pg_basebackup, pg_ctl and
#     `lifeboat archive-get` (restore_command) for restores and drills.
# Built in two stages so the final image has no compiler, dev dependencies or
# TypeScript sources.

# The Node of scripts/setup.sh (NODE_VERSION), the same 24 LTS build.
FROM node:24.22.3-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Not `npm ci`: see scripts/setup.sh (npm's lock omits other platforms' optional binaries).
RUN npm install --no-audit --no-fund --no-save
COPY tsconfig.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

# The node binary and the native modules (zstd, the Temporal core bridge:
# Node-API prebuilds for glibc) need a glibc at least bookworm's: postgres:15
# is Debian bookworm or later.
FROM postgres:15
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /opt/lifeboat
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
RUN ln -s /opt/lifeboat/bin/lifeboat /usr/local/bin/lifeboat && lifeboat --version
# Runbooks are mounted here (docker/runbooks in the compose stack).
ENV LIFEBOAT_RUNBOOKS_DIR=/etc/lifeboat/runbooks
# The official entrypoint stays: `postgres ...` initialises and starts the
# server, any other command (`lifeboat worker ...`) is run as given.
