# syntax=docker/dockerfile:1
# pixq: one image for every process (`pixq api`, `pixq worker`, `pixq start`, `pixq migrate`).
# The models come from the npm packages installed here, so a container never downloads one at run time.

# 1. Build: every dependency (TypeScript, Vite) to compile the server and the client package.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY . .
RUN npm ci --no-audit --no-fund

# 2. Runtime dependencies only; better-sqlite3's native addon is the one install script that must run.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
COPY packages/client/package.json packages/client/package.json
COPY web/package.json web/package.json
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3

# 3. The image: no compilers, no dev dependencies, not root.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production PIXQ_DATA_DIR=/data PORT=8080 ONNXRUNTIME_NODE_INSTALL=skip
# As `npm start`: glibc returns the image buffers of a burst of jobs instead of keeping them per thread
# (docs/deployment.md, "Memory").
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/packages/client/dist packages/client/dist
COPY --from=build /app/web/dist web/dist
COPY package.json LICENSE README.md ./
COPY packages/client/package.json packages/client/package.json
COPY bin bin
# Model files go to /data/models, a volume in compose.yaml: the directory must exist here, owned by node, or
# Docker would create the mount point as root and the worker could not write the model files it builds.
RUN mkdir -p /data/models && chown -R node:node /data
USER node
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/pixq.js"]
CMD ["start"]
