// Command harness measures the spike's Envoy dynamic module against a
// floor and against jwt_authn (+ Lua) under valgrind's callgrind:
// instructions Envoy executes per request, 2,000 requests counted after
// 2,000 of warm-up, minus an idle period as long as the counted one.
//
//	go run ./harness -so /tmp/dynmod-lib            # all variants, callgrind
//	go run ./harness -so /tmp/dynmod-lib -smoke     # no valgrind: answers only
//	go run ./harness -so /tmp/dynmod-lib -hazards   # concurrency, reload, restart, panic
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

type opts struct {
	envoy, so, only, dir string
	requests, consumers  int
	smoke, hazards       bool
}

func main() {
	var o opts
	flag.StringVar(&o.envoy, "envoy", os.Getenv("ENVOY_BIN"), "Envoy binary")
	flag.StringVar(&o.so, "so", "/tmp/dynmod-lib", "directory holding libtgspike.so (ENVOY_DYNAMIC_MODULES_SEARCH_PATH)")
	flag.StringVar(&o.only, "variants", "", "comma-separated variant names (default all)")
	flag.StringVar(&o.dir, "dir", "/tmp/dynmod-run", "scratch directory")
	flag.IntVar(&o.requests, "n", 2000, "requests counted (and as many of warm-up)")
	flag.IntVar(&o.consumers, "consumers", 10, "distinct tokens cycled")
	flag.BoolVar(&o.smoke, "smoke", false, "run each variant without valgrind and check the answers")
	flag.BoolVar(&o.hazards, "hazards", false, "run the hazard checks")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func run(o opts) error {
	if o.envoy == "" {
		return fmt.Errorf("-envoy or ENVOY_BIN is required")
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	c, err := newCreds(o.consumers)
	if err != nil {
		return err
	}
	up, err := echoUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	upPort := up.Addr().(*net.TCPAddr).Port
	if o.hazards {
		return hazards(o, c, upPort)
	}
	fmt.Printf("| variant | what | Envoy instructions/request | Δ vs a |\n|---|---|---:|---:|\n")
	base := 0.0
	for _, v := range variants() {
		if o.only != "" && !strings.Contains(","+o.only+",", ","+v.name+",") {
			continue
		}
		ir, err := measure(o, c, upPort, v)
		if err != nil {
			return fmt.Errorf("variant %s: %w", v.name, err)
		}
		if v.name == "a" {
			base = ir
		}
		fmt.Printf("| %s | %s | %.0f | %+.0f |\n", v.name, v.what, ir, ir-base)
	}
	return nil
}

// echoUpstream answers 200 and echoes the identity headers it received as
// x-echo-* response headers, so a smoke run can check what the filter set.
func echoUpstream() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"x-user-id", "x-user-roles", "x-tenant-id", "x-consumer-tier", "x-filter-state"} {
			w.Header().Set("x-echo-"+h, r.Header.Get(h))
		}
		_, _ = io.WriteString(w, "ok\n")
	})}
	go func() { _ = srv.Serve(ln) }()
	return ln, nil
}
