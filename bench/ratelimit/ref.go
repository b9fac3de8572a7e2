package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// startRef writes the reference service's configuration (the same limits
// as benchPolicy, per consumer) and starts it on free ports.
func startRef(bin, dir, redisAddr string, limits int, requests uint64) (string, func(), error) {
	root := filepath.Join(dir, fmt.Sprintf("runtime-%d-%d", limits, requests))
	cfgDir := filepath.Join(root, "ratelimit", "config")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "tollgate.yaml"), []byte(refConfig(limits, requests)), 0o644); err != nil {
		return "", nil, err
	}
	ports := make([]int, 3)
	for i := range ports {
		p, err := loadgen.FreePort()
		if err != nil {
			return "", nil, err
		}
		ports[i] = p
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "USE_STATSD=false", "LOG_LEVEL=warn", "REDIS_SOCKET_TYPE=tcp", "REDIS_URL="+redisAddr,
		"REDIS_POOL_SIZE=64", "RUNTIME_ROOT="+root, "RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_WATCH_ROOT=false",
		"HOST=127.0.0.1", "GRPC_HOST=127.0.0.1", "DEBUG_HOST=127.0.0.1",
		fmt.Sprintf("PORT=%d", ports[0]), fmt.Sprintf("GRPC_PORT=%d", ports[1]), fmt.Sprintf("DEBUG_PORT=%d", ports[2]))
	logf, err := os.Create(filepath.Join(root, "ratelimit.log"))
	if err != nil {
		return "", nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf // it logs every stats flush without statsd
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s: %w", bin, err)
	}
	stop := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }
	addr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	if err := loadgen.WaitTCP(addr, 15*time.Second); err != nil {
		stop()
		return "", nil, err
	}
	return addr, stop, nil
}

// refConfig is the reference service's domain config: per consumer of
// route api, the same windows as the tier (one descriptor per limit).
func refConfig(limits int, requests uint64) string {
	units := []struct {
		unit string
		n    uint64
	}{{"minute", requests}, {"hour", requests * 60}, {"day", requests * 1440}}
	var b strings.Builder
	b.WriteString("domain: tollgate\ndescriptors:\n")
	for i := 0; i < limits; i++ {
		fmt.Fprintf(&b, "  - key: route\n    value: api%d\n    descriptors:\n      - key: consumer\n        rate_limit: {unit: %s, requests_per_unit: %d}\n",
			i, units[i].unit, units[i].n)
	}
	return b.String()
}
