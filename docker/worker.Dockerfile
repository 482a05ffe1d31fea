# The GPU worker image: hpsearch-worker built against a CUDA LibTorch, one worker per container on the GPU
# that NVIDIA_VISIBLE_DEVICES names (inside the container it is always cuda:0).
#   docker build -f docker/worker.Dockerfile -t hpsearch-worker:cuda .
#   docker run -d --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=3 \
#     -e HPSEARCH_COORDINATOR=coordinator.example:50051 \
#     -v "$PWD/hpsearch-token:/run/secrets/hpsearch_token:ro" hpsearch-worker:cuda
#   (or --gpus '"device=3"' instead of --runtime/NVIDIA_VISIBLE_DEVICES)
#
# Debian 12 in both stages, like the coordinator image, so scripts/install-deps.sh names every package.
# NVIDIA publishes its CUDA base images for Ubuntu and RHEL only; the build stage takes the CUDA toolkit
# (nvcc and the headers LibTorch's CMake files look for) from NVIDIA's Debian 12 repository, and the runtime
# stage needs no CUDA packages: LibTorch's "shared-with-deps" zip carries the CUDA runtime libraries
# (cudart, cuBLAS, cuDNN, ...) and the NVIDIA container runtime mounts the driver. The toolkit's CUDA
# version must match the LibTorch zip's (cu128 with 12-8).
ARG CUDA_APT_VERSION=12-8
ARG LIBTORCH_URL=https://download.pytorch.org/libtorch/cu128/libtorch-cxx11-abi-shared-with-deps-2.7.1%2Bcu128.zip
ARG CUDA_ARCHITECTURES="80;90"

FROM debian:12 AS build
ARG CUDA_APT_VERSION
ARG LIBTORCH_URL
ARG CUDA_ARCHITECTURES
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh
# CUDA toolkit from NVIDIA's apt repository, and the CUDA LibTorch (cxx11 ABI: Debian's gRPC and protobuf use
# it; CMake stops with an explanation otherwise).
RUN apt-get update -q && apt-get install -y -q --no-install-recommends wget unzip ca-certificates && \
    wget -q https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb && \
    dpkg -i cuda-keyring_1.1-1_all.deb && rm cuda-keyring_1.1-1_all.deb && \
    apt-get update -q && apt-get install -y -q --no-install-recommends "cuda-toolkit-${CUDA_APT_VERSION}" && \
    rm -rf /var/lib/apt/lists/*
RUN wget -q -O /tmp/libtorch.zip "${LIBTORCH_URL}" && unzip -q /tmp/libtorch.zip -d /opt && rm /tmp/libtorch.zip
COPY . .
# CMAKE_PREFIX_PATH puts the CUDA LibTorch ahead of Debian's CPU one (installed by install-deps.sh, unused).
RUN HPSEARCH_BUILD_DIR=/build HPSEARCH_REQUIRE_CUDA=1 CUDACXX=/usr/local/cuda/bin/nvcc \
    HPSEARCH_CMAKE_ARGS="-DHPSEARCH_BUILD_TESTS=OFF -DHPSEARCH_BUILD_BENCH=OFF -DCMAKE_PREFIX_PATH=/opt/libtorch -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES}" \
    scripts/build.sh && \
    ldd /build/bin/hpsearch-worker | grep -q '/opt/libtorch/lib/libtorch_cuda.so'

FROM debian:12-slim
COPY --from=build /src/scripts/install-deps.sh /opt/hpsearch/install-deps.sh
RUN /opt/hpsearch/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/libtorch/lib/ /opt/libtorch/lib/
COPY --from=build /build/bin/ /opt/hpsearch/bin/
COPY data/ /opt/hpsearch/data/
COPY examples/ /opt/hpsearch/examples/
# The example command trials report through the hpsearch package's trial_context() (no gRPC needed).
COPY python/hpsearch/ /opt/hpsearch/python/hpsearch/
# The programs' RUNPATH names /opt/libtorch/lib (CMake's build RPATH); LD_LIBRARY_PATH covers the libraries'
# own dependencies there. NVIDIA_* tell the NVIDIA container runtime what to mount.
ENV PATH=/opt/hpsearch/bin:$PATH \
    LD_LIBRARY_PATH=/opt/libtorch/lib \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    HPSEARCH_COORDINATOR=coordinator:50051 \
    HPSEARCH_AUTH_TOKEN_FILE=/run/secrets/hpsearch_token
# Checkpoints go under the artifacts folder the coordinator names: mount the coordinator's volume here to
# share them (a re-leased trial then resumes from the last epoch on any worker).
VOLUME /var/lib/hpsearch
WORKDIR /var/lib/hpsearch
# One worker, on the one GPU the container sees. Its name defaults to the container's host name.
ENTRYPOINT ["hpsearch-worker"]
CMD ["--device", "cuda:0"]
