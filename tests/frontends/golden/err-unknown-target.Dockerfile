# golden: target=tset
FROM alpine AS build
FROM build AS test
