FROM scratch AS base
ENV PATH=/opt/bin:$PATH
WORKDIR /srv
USER app
LABEL a=1 b=2
CMD ["serve"]
ONBUILD LABEL from-trigger=yes
FROM base
ENTRYPOINT ["/entry"]
WORKDIR data
LABEL a=3
EXPOSE 8000-8001/udp 80
VOLUME /data /cache
STOPSIGNAL SIGINT
HEALTHCHECK --interval=10s --retries=2 CMD curl -f localhost
SHELL ["/bin/bash", "-c"]
RUN --mount=type=cache,target=/cache --network=none echo $PATH
