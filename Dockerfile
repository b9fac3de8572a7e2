# syntax=docker/dockerfile:1
# The tollgate image: a static binary on distroless, running as nonroot
# (uid 65532). Build: docker build --build-arg VERSION=$(git describe --tags --always) -t tollgate .
# Checked by deploy/dockerfile_test.go (pinned images, USER, copied paths).

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

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tollgate /usr/local/bin/tollgate
COPY --from=build --chown=65532:65532 /out/data /var/lib/tollgate
USER nonroot:nonroot
# admin API, xDS, ext_authz, rate limit; demo-upstream uses 9001
EXPOSE 9900 18000 18001 18002
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["--help"]
