package harness

import "strconv"

// HotRestart runs Envoy with hot restart on a fixed base id: the process
// of epoch N+1 takes over the listening sockets of epoch N (so no
// connection is refused), which drains its connections for --drain-time-s
// and exits after ParentShutdown seconds.
type HotRestart struct {
	// BaseID is shared by all epochs; pick one no other Envoy on the host
	// uses (a free port number will do).
	BaseID int
	// Epoch is 0 for the first process, then 1, 2, ...
	Epoch int
	// ParentShutdown is --parent-shutdown-time-s; 0 means 2.
	ParentShutdown int
}

// args returns Envoy's hot-restart flags; nil h disables hot restart.
func (h *HotRestart) args() []string {
	if h == nil {
		return []string{"--use-dynamic-base-id", "--disable-hot-restart"}
	}
	shutdown := h.ParentShutdown
	if shutdown == 0 {
		shutdown = 2
	}
	return []string{"--base-id", strconv.Itoa(h.BaseID), "--restart-epoch", strconv.Itoa(h.Epoch),
		"--parent-shutdown-time-s", strconv.Itoa(shutdown)}
}
