FROM alpine
RUN --mount=type=cache,target=/c,sharing=everyone \
    make
