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

// EnvoyVersion is the Envoy release this tollgate was built and tested
// for: the configuration it generates uses that release's API. It must
// equal the Makefile's ENVOY_VERSION (checked by TestEnvoyVersionMatchesMakefile),
// the Envoy that `make tools` installs and the e2e tests run.
const EnvoyVersion = "1.40.0"

// String returns a one-line description of the binary: its version, the Go
// toolchain that built it, when the build recorded it the VCS commit, and
// the Envoy version it is built for.
func String() string {
	s := fmt.Sprintf("tollgate %s (%s", Version, runtime.Version())
	if commit, modified := vcsInfo(); commit != "" {
		s += ", commit " + commit
		if modified {
			s += "-dirty"
		}
	}
	return s + ", for Envoy " + EnvoyVersion + ")"
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
