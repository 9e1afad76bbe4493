# syntax=docker/dockerfile:1
# The todo-api image: built with the Swift toolchain, shipped as one binary (Swift runtime, libpq
# and OpenSSL linked statically) on debian:bookworm-slim with no package added.
#   docker build -t todo-api .                                  (what `docker compose up` does)
#   docker buildx build --platform linux/amd64 -t todo-api .    (from an arm64 laptop, for X86_64 Fargate)
# Builds with BuildKit (Docker 23+'s default) and with the classic builder alike (no --chmod, no
# RUN --mount); docker-compose.yml needs Compose v2 (its top-level `name:`). scripts/image-test
# builds and runs both with a real engine (Docker 20.10.24 with BuildKit, Compose 2.40.3);
# scripts/container-check checks that this file agrees with docker-compose.yml and deploy/.
#
# Runtime image, layer by layer (measured by scripts/image-test with Docker 20.10, 2026-12-05):
#   debian:bookworm-slim                               74.8 MB  (~28 MB compressed)
#   user todo-api (uid 10001)                          <0.1 MB
#   CA bundles: Debian's roots, Amazon RDS's           0.4 MB
#   Migrations/, docs/openapi.yaml                     <0.1 MB
#   /usr/local/bin/todo-api, stripped                  13.7 MB  (22 MB with symbols and debug info)
#   total                                              ~89 MB as `docker images` shows it
# Crash backtraces: the binary is stripped and Swift's backtracer (swift-backtrace-static, 10 MB)
# is not shipped, to stay near 100 MB. The unstripped binary of the same build stays in the build
# stage: `docker build --target build -t todo-api-build .` and symbolize addresses against
# /src/.build/release/todo-api.

ARG SWIFT_IMAGE=swift:6.3.1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build -----------------------------------------------------------------------------------
FROM ${SWIFT_IMAGE} AS build
# libssl-dev (its version names the OpenSSL build), dpkg-dev (and its perl, for OpenSSL's
# Configure), make, pkg-config: what scripts/libpq-static needs to build OpenSSL and libpq from
# Debian's openssl and postgresql-15 sources (clang is the toolchain's). Versions are not pinned (DL3008): bookworm's security updates replace them, and a
# pin would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libssl-dev pkg-config dpkg-dev make ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# libpq, static and without GSSAPI/LDAP (its own layer: rebuilt only when the script or its patches change, so
# an OpenSSL or libpq security fix needs `docker build --pull --no-cache`; the service logs both
# versions at start).
COPY scripts/libpq-static ./scripts/libpq-static
COPY scripts/libpq-patches ./scripts/libpq-patches
# The pkg-config directory is kept in a file: the build step below reads it instead of running the
# script again (which, with no libpq-dev in this stage, would consult the live Debian index and
# could silently rebuild libpq inside the Swift layer when a newer postgresql-15 appears).
RUN pc="$(scripts/libpq-static)" && echo "$pc" > /src/.build-deps/pkgconfig-dir
# Dependencies first, in their own layer: re-resolved only when Package.swift or Package.resolved
# change, not on every source edit. Package.resolved is optional (Package.* matches it if present;
# with it, the pinned versions are used).
COPY Package.* ./
RUN if [ -f Package.resolved ]; then swift package resolve --force-resolved-versions; else swift package resolve; fi
# Package.swift declares the test targets too, so their directories must exist for the manifest to
# load, even though only the todo-api product is built.
COPY Sources ./Sources
COPY Tests ./Tests
RUN pc="$(cat /src/.build-deps/pkgconfig-dir)" \
 && PKG_CONFIG_PATH="$pc" swift build -c release --static-swift-stdlib --product todo-api \
 && install -D -m 0755 .build/release/todo-api /out/todo-api \
 && strip /out/todo-api
# The CA bundle of Amazon RDS / Aurora, so that PGSSLMODE=verify-full works with
# PGSSLROOTCERT=/etc/ssl/certs/rds-global-bundle.pem (deploy/ sets both). libpq 15 cannot use the
# system store (sslrootcert=system arrived in libpq 16), and RDS certificates are not in it anyway.
# Fetched here and made world-readable with chmod, not `ADD --chmod`: Docker 20.10's built-in
# Dockerfile frontend (used when the `syntax` image cannot be pulled) ignores --chmod on a URL
# and leaves the file 0600 root, unreadable by the runtime user (scripts/image-test checks it).
ADD https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /out/rds-global-bundle.pem
RUN chmod 0644 /out/rds-global-bundle.pem

# ---- runtime ---------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# The binary loads only what bookworm-slim has (libc6, libgcc-s1, libstdc++6): libpq and OpenSSL
# are linked in, so the runtime stage installs no package at all. The TLS trust roots are
# Debian's ca-certificates bundle, copied from the build stage (as distroless images do) instead
# of installing ca-certificates here, which pulled in the openssl CLI and libssl3 (5.6 MB the
# binary never loads) and apt's state: 13 MB, the difference between 101 and 88 MB.
# SSL_CERT_FILE points the statically linked OpenSSL at it (its compiled-in default,
# /usr/lib/ssl/cert.pem, does not exist here). Rebuild to take a CA update, as for OpenSSL itself.
# A fixed uid outside the system range (not --system: useradd warns that 10001 is above
# SYS_UID_MAX), no home, no login shell.
RUN groupadd --gid 10001 todo-api \
 && useradd --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin todo-api \
 && rm -f /var/log/faillog /var/log/lastlog
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/rds-global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
# The binary finds its migrations and the OpenAPI document relative to the working directory
# (MIGRATIONS_DIR default `Migrations`, OPENAPI_FILE default `docs/openapi.yaml`); the absolute
# paths below also hold when a task definition sets another working directory.
WORKDIR /app
COPY Migrations/ /app/Migrations/
COPY docs/openapi.yaml /app/docs/openapi.yaml
COPY --from=build /out/todo-api /usr/local/bin/todo-api
ENV MIGRATIONS_DIR=/app/Migrations \
    OPENAPI_FILE=/app/docs/openapi.yaml \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Numeric, so that runAsNonRoot-style checks can verify it without reading /etc/passwd. Nothing
# in the image is writable by this user: the service writes only to stdout (readonlyRootFilesystem
# works).
USER 10001:10001
# 8000: the API (the ALB's target port). The metrics listener (METRICS_PORT, 9090) is reached
# inside the VPC only and deliberately not exposed here.
EXPOSE 8000
# What ECS and `docker stop` send; the service drains for DRAIN_TIMEOUT (25 s), under ECS's
# stopTimeout (30 s) and compose's stop_grace_period (30 s).
STOPSIGNAL SIGTERM
# The shallow check (GET /health never touches the database), with the binary itself: no curl in
# the image. The subcommand's own budget is 2 s, inside the 5 s timeout.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/todo-api", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/todo-api"]
CMD ["serve"]
