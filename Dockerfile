# The cps image: the built monorepo (CLI, director, manager and agent runtimes) and Debian's
# nats-server 2.9.10, the version cps is designed to. Used by docker-compose.yml for every service.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY . .
RUN npm ci --no-audit --no-fund && npm run build

# Production dependencies beside the build output; each workspace keeps only what Node loads.
FROM build AS prod
RUN rm -rf node_modules libs/*/node_modules apps/*/node_modules tools/*/node_modules \
 && npm ci --omit=dev --no-audit --no-fund \
 && find libs apps tools -mindepth 2 -maxdepth 2 \
      ! -name dist ! -name bin ! -name node_modules ! -name package.json -exec rm -rf {} + \
 && find libs apps tools -name '*.tsbuildinfo' -delete

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nats-server \
 && rm -rf /var/lib/apt/lists/*
# /var/lib/cps/*: mount points of the compose volumes; an empty named volume takes their owner
RUN groupadd --system --gid 10001 cps \
 && useradd --system --uid 10001 --gid cps --home-dir /var/lib/cps --shell /usr/sbin/nologin cps \
 && install -d -o cps -g cps -m 0700 /var/lib/cps /var/lib/cps/d1 /var/lib/cps/d2 /var/lib/cps/nats \
      /var/lib/cps/data /var/lib/cps/data/resolver /var/lib/cps/data/jetstream
WORKDIR /app
COPY --from=prod /app/package.json ./
COPY --from=prod /app/node_modules ./node_modules
COPY --from=prod /app/libs ./libs
COPY --from=prod /app/apps ./apps
COPY --from=prod /app/tools ./tools
COPY deploy/docker/init.sh ./deploy/docker/
USER cps
EXPOSE 14443
ENTRYPOINT ["node", "tools/cli/bin/cps.js"]
CMD ["--help"]
