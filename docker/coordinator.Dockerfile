# The coordinator (and CLI) image: Debian 12 with hpsearch's CPU build. The results database and the
# artifacts live on the volume /var/lib/hpsearch.
#   docker build -f docker/coordinator.Dockerfile -t hpsearch-coordinator .
#   openssl rand -hex 32 > hpsearch-token && chmod 600 hpsearch-token
#   docker run -d --name hpsearch -v hpsearch-data:/var/lib/hpsearch -p 127.0.0.1:50051:50051 \
#     -v "$PWD/hpsearch-token:/run/secrets/hpsearch_token:ro" hpsearch-coordinator
# The container listens on 0.0.0.0:50051 (a container must, to be reached through a published port); give
# it TLS too when the port leaves the host: append --tls-cert/--tls-key to the command (docs/security.md).
FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh
COPY . .
RUN HPSEARCH_BUILD_DIR=/build HPSEARCH_CMAKE_ARGS="-DHPSEARCH_BUILD_TESTS=OFF -DHPSEARCH_BUILD_BENCH=OFF" \
    scripts/build.sh

FROM debian:12-slim
COPY --from=build /src/scripts/install-deps.sh /opt/hpsearch/install-deps.sh
RUN /opt/hpsearch/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/ /opt/hpsearch/bin/
COPY data/ /opt/hpsearch/data/
COPY examples/ /opt/hpsearch/examples/
# A token is required by default: the coordinator refuses to start, naming the file, when
# /run/secrets/hpsearch_token is missing. `-e HPSEARCH_AUTH_TOKEN_FILE=` (empty) runs it without one (it then
# warns at start, since it listens beyond loopback). Clients in the container (the health check,
# `docker exec hpsearch hpsearch status`) read the same variables.
ENV PATH=/opt/hpsearch/bin:$PATH \
    HPSEARCH_COORDINATOR=127.0.0.1:50051 \
    HPSEARCH_AUTH_TOKEN_FILE=/run/secrets/hpsearch_token
VOLUME /var/lib/hpsearch
WORKDIR /var/lib/hpsearch
EXPOSE 50051
# `hpsearch health` against the coordinator itself: gRPC health checking (no token needed), exit 0 when it
# answers SERVING. With TLS, set HPSEARCH_TLS_CA and give the certificate a subjectAltName for 127.0.0.1.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["hpsearch", "health", "--timeout", "5"]
ENTRYPOINT ["hpsearch"]
CMD ["serve", "--db", "/var/lib/hpsearch/results.db", "--listen", "0.0.0.0:50051"]
