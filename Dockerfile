# syntax=docker/dockerfile:1
# Build: docker build -t jingmin .
# Run:   docker run -p 127.0.0.1:8080:8080 -e JINGMIN_PLAYGROUND_LISTEN=0.0.0.0:8080 -v jingmin-data:/data jingmin
#        (the playground lets anyone who reaches it act as any officer: publish it on the host's loopback only)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/jingmin ./cmd/jingmin \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/jingmin /usr/local/bin/jingmin
COPY --from=build --chown=nonroot:nonroot /out/data /data
WORKDIR /data
USER nonroot:nonroot
ENV JINGMIN_DATABASE_DSN=/data/jingmin.db \
    JINGMIN_OPS_LISTEN=0.0.0.0:9090
EXPOSE 8080 9090
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s CMD ["/usr/local/bin/jingmin", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/jingmin"]
CMD ["serve"]
