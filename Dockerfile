# syntax=docker/dockerfile:1
# The tollgate image: a static binary on distroless, running as nonroot
# (uid 65532), carrying Tollgate's Envoy module for Envoy to load (copied
# out by `tollgate envoy-module install`: docs/operations/envoy-module.md).
# Build: docker build --build-arg VERSION=$(git describe --tags --always) -t tollgate .
# Checked by deploy/dockerfile_test.go (pinned images, USER, copied paths,
# the module built as `make module` builds it).

FROM golang:1.27 AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -trimpath -ldflags "-s -w -X github.com/tollgate/tollgate/internal/version.Version=${VERSION}" \
        -o /out/tollgate ./cmd/tollgate && \
    mkdir -p /out/data

# The Envoy module (envoymodule/, its own Go module, cgo, c-shared): the
# `make module` build. Debian bookworm (glibc 2.36) so the library needs
# glibc ≤ 2.34 and loads in any Envoy 1.40 image (Ubuntu noble's 2.39, the
# distroless one's 2.36). /out/envoy-module is the empty directory, owned by
# nonroot, that a compose volume mounted there starts as.
FROM golang:1.27-bookworm AS module
WORKDIR /src
ENV CGO_ENABLED=1
COPY go.mod go.sum ./
COPY envoymodule/go.mod envoymodule/go.sum ./envoymodule/
RUN cd envoymodule && go mod download
COPY . .
RUN cd envoymodule && go build -trimpath -buildmode=c-shared -o /out/libtollgate_envoy.so . && \
    mkdir -p /out/envoy-module

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tollgate /usr/local/bin/tollgate
COPY --from=build --chown=65532:65532 /out/data /var/lib/tollgate
COPY --from=module /out/libtollgate_envoy.so /usr/lib/tollgate/libtollgate_envoy.so
COPY --from=module --chown=65532:65532 /out/envoy-module /var/lib/tollgate-envoy-module
USER nonroot:nonroot
# admin API, xDS, ext_authz, rate limit; demo-upstream uses 9001
EXPOSE 9900 18000 18001 18002
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["--help"]
