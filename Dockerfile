# syntax=docker/dockerfile:1
#
# onair's container image: `docker compose up --build` (see README, "Run with
# Docker Compose"), or `docker build -t onair .`. Checked by tests/deploy.rs.

# ---- build: the release binary -------------------------------------------
FROM rust:1.95-bookworm AS build

# GStreamer headers for the gstreamer crates (the same dev list as scripts/setup).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      pkg-config \
      libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Everything the binary compiles in: migrations (sqlx::migrate!), the default
# configuration, the built-in layouts, the pages, the OpenAPI document and the
# label font (tests/deploy.rs finds these from the include_* macros in src/).
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY layouts ./layouts
COPY templates ./templates
COPY openapi ./openapi
COPY assets ./assets
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -m 0755 target/release/onair /usr/local/bin/onair

# ---- runtime: GStreamer plugins, no compilers, no headers -----------------
FROM debian:bookworm-slim

# The composer's elements (checked at start-up, src/composer/mod.rs):
#   -base: appsrc, compositor, audiomixer, overlaycomposition, opusdec, videoconvert, …
#   -good: rtpbin, rtp depayloaders, vp8dec/vp9dec, mp4mux, flvmux, aacparse, videocrop, gdkpixbufoverlay
#   -bad:  h264parse, rtmp2sink
#   -ugly: x264enc
#   -libav: avdec_h264, avenc_aac
# curl is for the health check, ca-certificates for Mux's API and rtmps://,
# glib-networking is GIO's TLS backend (rtmps:// destinations).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
      gstreamer1.0-plugins-ugly gstreamer1.0-libav \
      ca-certificates glib-networking curl \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root user; its home holds recordings, user layouts
# (media.layouts_dir, empty by default) and GStreamer's plugin cache.
RUN groupadd --system --gid 10001 onair \
 && useradd --system --uid 10001 --gid onair --home-dir /var/lib/onair --shell /usr/sbin/nologin onair \
 && mkdir -p /var/lib/onair/recordings /var/lib/onair/layouts \
 && chown -R onair:onair /var/lib/onair

COPY --from=build /usr/local/bin/onair /usr/local/bin/onair

USER 10001:10001
WORKDIR /var/lib/onair
ENV HOME=/var/lib/onair \
    ONAIR_SERVER__LISTEN=0.0.0.0:7880 \
    ONAIR_LOG=info

# HTTP (REST API, WHIP/WHEP, room pages, webhooks) and the SFU's one media port.
EXPOSE 7880/tcp 7882/udp

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:7880/healthz || exit 1

ENTRYPOINT ["onair"]
CMD ["serve"]
