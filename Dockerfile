# vidx in a container: a multi-stage build (the Rust toolchain only in the
# first stage), a non-root user, the data directory as a volume.
#
#   docker build -t vidx .
#   docker run -d -p 127.0.0.1:50051:50051 -p 127.0.0.1:9090:9090 -v vidx-data:/var/lib/vidx vidx
#
# Not built in this repository's CI (no base images offline); it runs the
# same `cargo build --release` that CI proves. vidx has no authentication
# yet: publish the ports on loopback or a private network only.

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
# protoc comes from the protoc-bin-vendored crate: nothing else to install.
RUN cargo build --release --locked --bin vidx

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 vidx \
 && useradd --system --uid 10001 --gid vidx --home-dir /var/lib/vidx --shell /usr/sbin/nologin vidx \
 && mkdir -p /var/lib/vidx /etc/vidx \
 && chown vidx:vidx /var/lib/vidx \
 && chmod 0700 /var/lib/vidx
COPY --from=build /src/target/release/vidx /usr/local/bin/vidx
COPY deploy/vidx.toml /etc/vidx/vidx.toml
USER vidx:vidx
VOLUME ["/var/lib/vidx"]
# Inside the container the listeners must face the container's network;
# the environment overrides the file's loopback addresses.
ENV VIDX_LISTEN=0.0.0.0:50051 \
    VIDX_METRICS_LISTEN=0.0.0.0:9090
EXPOSE 50051 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/vidx", "serve", "--config", "/etc/vidx/vidx.toml"]
