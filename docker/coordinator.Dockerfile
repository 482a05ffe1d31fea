# The coordinator (and CLI) image: Debian 12 with hpsearch's CPU build.
#   docker build -f docker/coordinator.Dockerfile -t hpsearch-coordinator .
#   docker run -v hpsearch-data:/var/lib/hpsearch -p 50051:50051 hpsearch-coordinator
FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh
COPY . .
RUN HPSEARCH_BUILD_DIR=/build HPSEARCH_CMAKE_ARGS="-DHPSEARCH_BUILD_TESTS=OFF -DHPSEARCH_BUILD_BENCH=OFF" \
    scripts/build.sh

FROM debian:12-slim
COPY --from=build /src/scripts/install-deps.sh /opt/hpsearch/install-deps.sh
RUN /opt/hpsearch/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/ /opt/hpsearch/bin/
COPY data/ /opt/hpsearch/data/
COPY examples/ /opt/hpsearch/examples/
ENV PATH=/opt/hpsearch/bin:$PATH
VOLUME /var/lib/hpsearch
WORKDIR /var/lib/hpsearch
EXPOSE 50051
ENTRYPOINT ["hpsearch"]
CMD ["--help"]
