FROM alpine:3.19
RUN apk add --no-cache \
# comments inside a continuation are dropped
      curl \

      git
RUN echo "a\\b" \\
RUN ["echo", "exec form"]
CMD [not json]
ENV A=1 B="two words" C=three\ words
ENV LEGACY value with  spaces
LABEL "quoted key"=v
