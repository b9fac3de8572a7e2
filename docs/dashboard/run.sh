#!/usr/bin/env bash
# Renders docs/dashboard.png from a real run: the tollgate binary, a real
# Envoy, four demo upstreams, Debian's Prometheus 2.42 scraping Envoy and
# tollgate every 5 s, and docs/dashboard/traffic for RUN_SECONDS; then
# docs/dashboard/render draws the panels of
# deploy/observability/grafana/dashboards/tollgate.json from that Prometheus
# (query_range per panel target) as HTML/SVG, and headless Chromium
# screenshots it. It is not Grafana: Grafana is not packaged for Debian.
# traffic and render are small Go programs (standard library), run with
# `go run`. Needs: go, prometheus, chromium, ENVOY_BIN or .tools/bin/envoy.
# Uses loopback ports 18080 and 19101-19205. Also rewrites
# docs/dashboard/top.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN_SECONDS=${RUN_SECONDS:-360}
OUT=${OUT:-docs/dashboard.png}
case $OUT in /*) ;; *) OUT="$PWD/$OUT" ;; esac
ENVOY=${ENVOY_BIN:-.tools/bin/envoy}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
waitfor() { # url [header]
	for _ in $(seq 1 100); do
		if curl -fsS -o /dev/null ${2:+-H "$2"} "$1"; then return 0; fi
		sleep 0.2
	done
	echo "timed out waiting for $1" >&2
	return 1
}

export GOTOOLCHAIN=auto # go.mod's toolchain (Go 1.27), downloaded if the go on PATH is older, as in the Makefile
go build -o "$work/tollgate" ./cmd/tollgate
go build ./docs/dashboard/traffic ./docs/dashboard/render # compiled now, so `go run` starts at once below
T="$work/tollgate"
names=(users-1 users-2 search-1 orders-1)
for i in 1 2 3 4; do
	"$T" demo-upstream --addr "127.0.0.1:1910$i" --name "${names[$((i - 1))]}" >"$work/upstream-$i.log" 2>&1 &
	pids+=($!)
done
sed "s|ACCESS_LOG|$work/access.log|" docs/dashboard/policy.yaml >"$work/policy.yaml"
"$T" serve --policy "$work/policy.yaml" --data-dir "$work/store" --xds-addr 127.0.0.1:19200 --authz-addr 127.0.0.1:19201 \
	--ratelimit-addr 127.0.0.1:19202 --admin-addr 127.0.0.1:19203 --admin-token screenshot >"$work/serve.log" 2>&1 &
pids+=($!)
waitfor http://127.0.0.1:19203/readyz
export TOLLGATE_SERVER=http://127.0.0.1:19203 TOLLGATE_TOKEN=screenshot
# The text output's first line is the key (the second is a comment).
key() { "$T" keys create --consumer "$1" --tier "$2" -o text | sed -n 1p; }
pro=$(key alice pro)
trial=$(key bob trial)
"$T" bootstrap --gateway public --node-id screenshot-0 --xds 127.0.0.1:19200 --admin-port 19204 >"$work/envoy.yaml"
"$ENVOY" -c "$work/envoy.yaml" --concurrency 1 --disable-hot-restart --use-dynamic-base-id --file-flush-interval-msec 1000 >"$work/envoy.log" 2>&1 &
pids+=($!)
waitfor http://127.0.0.1:19204/ready
cat >"$work/prometheus.yml" <<PROM
global: {scrape_interval: 5s, evaluation_interval: 5s}
scrape_configs:
  - job_name: envoy
    metrics_path: /stats/prometheus
    static_configs: [{targets: ["127.0.0.1:19204"]}]
  - job_name: tollgate
    authorization: {type: Bearer, credentials: screenshot}
    static_configs: [{targets: ["127.0.0.1:19203"]}]
PROM
prometheus --config.file "$work/prometheus.yml" --storage.tsdb.path "$work/prom" \
	--web.listen-address 127.0.0.1:19205 >"$work/prometheus.log" 2>&1 &
pids+=($!)
waitfor http://127.0.0.1:19205/-/ready
start=$(date +%s)
(sleep $((RUN_SECONDS - 12)) && "$T" top --envoy http://127.0.0.1:19204 --once --interval 10s >docs/dashboard/top.txt) &
toppid=$!
# Two pushes (a new timeout on search, then another) that the proxy
# acknowledges: the second shows on the push-to-ACK panel (rate() needs a
# series that already existed).
(sleep $((RUN_SECONDS / 3)) && sed 's|backend: search-service, |backend: search-service, timeout: 5s, |' "$work/policy.yaml" >"$work/policy2.yaml" &&
	"$T" push "$work/policy2.yaml" >"$work/push.log" 2>&1 &&
	sleep $((RUN_SECONDS / 3)) && sed 's|timeout: 5s|timeout: 4s|' "$work/policy2.yaml" >"$work/policy3.yaml" &&
	"$T" push "$work/policy3.yaml" >>"$work/push.log" 2>&1) &
pushpid=$!
go run ./docs/dashboard/traffic http://127.0.0.1:18080 "$pro" "$trial" "$RUN_SECONDS"
wait "$toppid" "$pushpid"
sleep 6 # one more scrape
go run ./docs/dashboard/render --prometheus http://127.0.0.1:19205 \
	--dashboard deploy/observability/grafana/dashboards/tollgate.json --start "$start" --end "$(date +%s)" \
	--html "$work/dashboard.html" --height-file "$work/height"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
	--window-size="1440,$(cat "$work/height")" --screenshot="$OUT" "file://$work/dashboard.html" 2>"$work/chromium.log"
echo "wrote $OUT (work dir $work)"
