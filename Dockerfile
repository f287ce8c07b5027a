# syntax=docker/dockerfile:1
#
# paysidecar: the sidecar binary and every flow plugin under plugins/ on a
# distroless base, running as an unprivileged user.
#
#   docker build -t paysidecar:dev --build-arg VERSION=$(git describe --always) .
#   docker run --rm -p 8001:8001 -p 9090:9090 \
#     -e PAYSIDECAR_UPSTREAM__PRIVATE_KEY="$(cat keys/merchant_private_key.txt)" ... paysidecar:dev
#
# Configuration comes from the environment (PAYSIDECAR_<KEY>, levels joined
# by "__", see config.example.yaml) and optionally a file passed with
# --config. The environment wins over the file, including the four settings
# this image presets below.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Pure Go (SQLite is modernc.org/sqlite): static binaries without cgo. The
# plugins leave out gRPC's debug tracing pages (grpcnotrace), as the
# Makefile builds them: see the Makefile's plugins target.
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# The plugin SDK is a module of its own, which the sidecar's go.mod
# replaces with ./sdk.
COPY go.mod go.sum ./
COPY sdk/go.mod sdk/go.sum ./sdk/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    mkdir -p /out/plugins /out/data; \
    go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/paysidecar ./sidecar/cmd/paysidecar; \
    for dir in plugins/*/; do \
      flow="$(basename "${dir}")"; \
      [ "$(go list -f '{{.Name}}' "./plugins/${flow}" 2>/dev/null)" = main ] || continue; \
      go build -tags=grpcnotrace -ldflags "-s -w" -o "/out/plugins/${flow}" "./plugins/${flow}"; \
    done; \
    cd /out/plugins && sha256sum -- * > /tmp/SHA256SUMS && mv /tmp/SHA256SUMS .

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="paysidecar" \
      org.opencontainers.image.description="Payment sidecar for the NKP Open API (DouGong v2 compatible)" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/paysidecar /usr/bin/paysidecar
# Every executable in the directory is a flow plugin named after its file;
# SHA256SUMS (not executable) lists their checksums for
# plugins.flows.<flow>.sha256.
COPY --from=build /out/plugins/ /usr/lib/paysidecar/plugins/
COPY --from=build --chown=65532:65532 /out/data /var/lib/paysidecar
ENV PAYSIDECAR_PLUGINS__DIR=/usr/lib/paysidecar/plugins \
    PAYSIDECAR_STORE__SQLITE_PATH=/var/lib/paysidecar/paysidecar.db \
    PAYSIDECAR_NOTIFY__LISTEN=0.0.0.0:8001 \
    PAYSIDECAR_ADMIN__LISTEN=0.0.0.0:9090
# The app API stays on 127.0.0.1:8080: only the application in the same pod
# (same network namespace) may call it.
EXPOSE 8001 9090
USER 65532:65532
WORKDIR /var/lib/paysidecar
ENTRYPOINT ["/usr/bin/paysidecar"]
CMD ["run"]
