# Dockerfile: the paved container image (docs/OPERATING.md, charts/paved/).
#
#   docker build -t registry.example.com/platform/paved:0.1.0 .
#   docker run --rm -p 8443:8443 -v "$PWD/certs:/etc/paved/tls:ro" \
#       registry.example.com/platform/paved:0.1.0
#
# Two stages on Debian 12. The build stage installs the build packages of
# tools/deps.sh (the one list the Makefile uses too), builds build/paved and installs it
# under /out. The runtime stage has the shared libraries paved links and nothing else:
# no compiler, no -dev package, no build tree. It runs as uid/gid 65532 and works with a
# read-only root filesystem: paved writes only its audit store (the database and its
# -wal and -shm files, so the directory must be writable, not just the file) under
# /var/lib/paved, and SQLite's temporary files, which go to /tmp when that is writable
# (mount an emptyDir there) and otherwise to the working directory, /var/lib/paved.
# tests/chart/dockerfile.sh checks these properties.
#
# No health check instruction: Kubernetes probes GET /healthz and /readyz over HTTPS.

FROM debian:12-slim AS build

WORKDIR /src
# The package list first, so a source change does not reinstall the toolchain.
COPY tools/deps.sh tools/deps.sh
RUN sh tools/deps.sh build && rm -rf /var/lib/apt/lists/*

COPY . .
# The tests are not run here (make test needs more packages and minutes); CI runs them
# on the same commit. A stale build/ from the context is excluded by .dockerignore.
RUN make -j"$(nproc)" build/paved \
 && make install DESTDIR=/out PREFIX=/usr \
 && /out/usr/bin/paved version

# The image's default paved.yaml: listen on every address, TLS files from
# /etc/paved/tls (mount a kubernetes.io/tls Secret or `paved certs --out` there), the
# audit store under /var/lib/paved, and the shipped golden-path bindings, taken from
# policies/default.yaml so the two never drift. The Helm chart mounts its own.
RUN install -d /out/etc/paved \
 && { printf '%s\n' \
        '# /etc/paved/paved.yaml: the default configuration of the paved image.' \
        '# The bindings are those of policies/default.yaml (the shipped golden path).' \
        'server:' \
        '  listen: 0.0.0.0:8443' \
        '  tls_cert: /etc/paved/tls/tls.crt' \
        '  tls_key: /etc/paved/tls/tls.key' \
        'audit:' \
        '  db: /var/lib/paved/paved.db' \
        '  durability: sync' \
        '' ; \
      cat policies/default.yaml ; } > /out/etc/paved/paved.yaml \
 && /out/usr/bin/paved check --config /out/etc/paved/paved.yaml examples/golden-deployment.yaml

FROM debian:12-slim

# The shared libraries of build/paved (ldd) and ca-certificates for
# `paved check --server`. Only runtime packages: tests/chart/dockerfile.sh fails on a
# -dev package or a compiler here.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates \
        libcjson1 \
        libcurl4 \
        libgnutls30 \
        liblua5.4-0 \
        libmicrohttpd12 \
        libmimalloc2.0 \
        libpcre2-8-0 \
        libsqlite3-0 \
        libssl3 \
        libyaml-0-2 \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 65532 paved \
 && useradd --system --no-log-init --uid 65532 --gid 65532 \
        --home-dir /var/lib/paved --no-create-home --shell /usr/sbin/nologin paved

COPY --from=build /out/ /
RUN install -d -o 65532 -g 65532 -m 0750 /var/lib/paved

LABEL org.opencontainers.image.title="paved" \
      org.opencontainers.image.description="Policy-as-code admission webhook and audit service" \
      org.opencontainers.image.base.name="debian:12-slim"

# Relative paths (the default audit.db "paved.db", SQLite's last-resort temporary
# directory) resolve inside the writable data directory.
WORKDIR /var/lib/paved
VOLUME ["/var/lib/paved"]
EXPOSE 8443
USER 65532:65532

ENTRYPOINT ["/usr/bin/paved"]
CMD ["serve", "--config", "/etc/paved/paved.yaml"]
