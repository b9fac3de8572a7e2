// Package version reports the version of the tollgate binary.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version of the binary. It is set at link time with
// -ldflags "-X github.com/tollgate/tollgate/internal/version.Version=...".
var Version = "dev"

// String returns a one-line description of the binary: its version, the Go
// toolchain that built it and, when the build recorded it, the VCS commit.
func String() string {
	s := fmt.Sprintf("tollgate %s (%s", Version, runtime.Version())
	if commit, modified := vcsInfo(); commit != "" {
		s += ", commit " + commit
		if modified {
			s += "-dirty"
		}
	}
	return s + ")"
}

// vcsInfo returns the VCS revision recorded in the build info, shortened to
// 12 characters, and whether the work tree had local modifications.
func vcsInfo() (commit string, modified bool) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", false
	}
	for _, setting := range info.Settings {
		switch setting.Key {
		case "vcs.revision":
			commit = setting.Value
		case "vcs.modified":
			modified = setting.Value == "true"
		}
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	return commit, modified
}
