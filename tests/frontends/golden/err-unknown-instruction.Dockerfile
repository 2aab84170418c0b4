FROM alpine
WORKDIR /src

RUNN make
CMD ["app"]
