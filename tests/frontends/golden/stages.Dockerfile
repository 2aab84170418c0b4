# golden: target=release build-arg=VERSION=2.0 build-arg=EXTRA=1
ARG VERSION=1.0
ARG BASE=alpine:${VERSION}
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG TARGETOS TARGETARCH
ARG VERSION
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -ldflags "-X main.v=$VERSION" -o /app
FROM ${BASE} AS unused
RUN echo never
FROM $BASE AS release
COPY --from=build /app /usr/bin/app
COPY --from=0 /etc/ssl /etc/ssl
ENTRYPOINT ["/usr/bin/app"]
