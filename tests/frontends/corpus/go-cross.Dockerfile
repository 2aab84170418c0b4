# syntax=docker/dockerfile:1.7

ARG GO_VERSION=1.22
ARG XX_VERSION=1.4.0

FROM --platform=$BUILDPLATFORM tonistiigi/xx:${XX_VERSION} AS xx

# build compiles the server for the target platform
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
COPY --from=xx / /
RUN apk add --no-cache clang lld
ARG TARGETPLATFORM
RUN xx-apk add --no-cache musl-dev gcc
WORKDIR /src
RUN --mount=type=bind,source=go.mod,target=go.mod \
    --mount=type=bind,source=go.sum,target=go.sum \
    --mount=type=cache,target=/go/pkg/mod \
    go mod download
ENV CGO_ENABLED=1
RUN --mount=type=bind,target=. \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg/mod \
    xx-go build -ldflags "-s -w" -o /out/server ./cmd/server && \
    xx-verify /out/server

FROM build AS test
RUN --mount=type=bind,target=. \
    --mount=type=cache,target=/root/.cache/go-build \
    go test ./...

FROM alpine:3.19 AS release
RUN apk add --no-cache ca-certificates tzdata \
 && adduser -D -u 10001 app
COPY --from=build --chmod=0755 /out/server /usr/local/bin/server
USER app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["/usr/local/bin/server", "-health"]
ENTRYPOINT ["/usr/local/bin/server"]
