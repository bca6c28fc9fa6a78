# syntax=docker/dockerfile:1
#
# Watchroom image: one static binary on a distroless base.
#
#   docker build -t watchroom .
#   docker run --rm -p 8080:8080 -e WATCHROOM_DATABASE_URL=postgres://... watchroom
#
# No Node.js stage: the dashboard's built assets are committed in
# frontend/dist/ and compiled into the binary with go:embed, so the Go build
# alone produces the whole product. Rebuild them with `npm run build` in
# frontend/ before building the image when the frontend changed.

# Keep the minor version in step with the go directive of go.mod
# (internal/config/compose_test.go checks it).
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Never download another toolchain during the build: the image's Go is the
# one go.mod asks for.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local

# Modules first, in their own layer: source edits do not invalidate it, so
# a rebuild downloads nothing unless go.mod or go.sum changed.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
# The build cache survives between builds (BuildKit cache mount) without
# ending up in any layer.
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/watchroom ./cmd/watchroom

# Static binary (CGO off): no libc, no shell, no package manager. The
# nonroot variant runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/watchroom /watchroom
USER nonroot:nonroot
# 8080: dashboard, REST, /ws, /metrics (WATCHROOM_HTTP_ADDR).
# 1883: the embedded MQTT broker, used only when WATCHROOM_MQTT_URL is empty
# (WATCHROOM_MQTT_LISTEN); the compose file uses Mosquitto instead.
EXPOSE 8080 1883
# Distroless has no shell or curl: the binary checks itself
# (GET http://127.0.0.1:8080/healthz, exit 0 or 1).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["/watchroom", "healthcheck"]
ENTRYPOINT ["/watchroom"]
CMD ["serve"]
