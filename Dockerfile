# Multi-stage build of both binaries into one small, non-root image.
#   docker build -t rook-kms-webhook:dev .
# (No Docker engine runs on the development machines; this file is not built by the tests.)

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin rook-kms-webhook --bin rook-kms-controller

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/rook-kms-webhook /usr/local/bin/rook-kms-webhook
COPY --from=build /src/target/release/rook-kms-controller /usr/local/bin/rook-kms-controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rook-kms-webhook"]
