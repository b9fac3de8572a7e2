package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its line continuations
// joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// knownInstructions are the Dockerfile instructions (docs.docker.com
// reference); anything else is a typo.
var knownInstructions = map[string]bool{
	"FROM": true, "RUN": true, "CMD": true, "LABEL": true, "EXPOSE": true, "ENV": true, "ADD": true, "COPY": true,
	"ENTRYPOINT": true, "VOLUME": true, "USER": true, "WORKDIR": true, "ARG": true, "ONBUILD": true,
	"STOPSIGNAL": true, "HEALTHCHECK": true, "SHELL": true,
}

// parseDockerfile is a small strict reader of the Dockerfile syntax this
// repository uses: comments, blank lines, `\` continuations, one
// instruction per logical line. (buildkit's parser would pull the whole
// buildkit module into go.sum for this.)
func parseDockerfile(t *testing.T, src string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		body, more := strings.CutSuffix(trimmed, "\\")
		cur.WriteString(strings.TrimSpace(body) + " ")
		if more {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		cmd = strings.ToUpper(cmd)
		if !knownInstructions[cmd] {
			t.Errorf("Dockerfile:%d: unknown instruction %q", start, cmd)
		}
		out = append(out, instruction{line: start, cmd: cmd, args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() != 0 {
		t.Errorf("Dockerfile ends inside a continued line")
	}
	return out
}

// TestDockerfile checks the tollgate image's build: a pinned golang:1.27
// builder (the release go.mod's go line names: the image's Go does not
// download toolchains) with CGO off and the version ldflags, a distroless
// static nonroot runtime that runs as nonroot, and COPY sources that exist
// (in the build context, which .dockerignore must not hide).
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, string(readFile(t, "Dockerfile")))
	var froms, copies []instruction
	var user, entrypoint, buildRun string
	env := map[string]bool{}
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in)
		case "COPY":
			copies = append(copies, in)
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				env[kv] = true
			}
		case "RUN":
			if strings.Contains(in.args, "go build") {
				buildRun = in.args
			}
		}
	}
	wantFroms := []string{"golang:1.27 AS build", "gcr.io/distroless/static-debian12:nonroot"}
	if len(froms) != len(wantFroms) {
		t.Fatalf("%d stages, want %d: %v", len(froms), len(wantFroms), froms)
	}
	for i, f := range froms {
		if f.args != wantFroms[i] {
			t.Errorf("Dockerfile:%d: FROM %s, want FROM %s", f.line, f.args, wantFroms[i])
		}
	}
	if want := "golang:" + goModRelease(t) + " AS build"; froms[0].args != want {
		t.Errorf("Dockerfile:%d: FROM %s, but go.mod's go line needs FROM %s", froms[0].line, froms[0].args, want)
	}
	if user != "nonroot:nonroot" {
		t.Errorf("the last USER is %q, want nonroot:nonroot", user)
	}
	if entrypoint != `["/usr/local/bin/tollgate"]` {
		t.Errorf("ENTRYPOINT %s, want [\"/usr/local/bin/tollgate\"] (compose health checks call that path)", entrypoint)
	}
	for _, kv := range []string{"CGO_ENABLED=0"} {
		if !env[kv] {
			t.Errorf("the builder does not set ENV %s", kv)
		}
	}
	for _, want := range []string{"-trimpath", "-X github.com/tollgate/tollgate/internal/version.Version=${VERSION}", "./cmd/tollgate", "-o /out/tollgate"} {
		if !strings.Contains(buildRun, want) {
			t.Errorf("go build line %q lacks %q", buildRun, want)
		}
	}
	checkCopies(t, copies)
}

// goModRelease returns the Go release (major.minor, e.g. 1.27) of go.mod's
// go line.
func goModRelease(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

// checkCopies checks that COPY from the context names files that exist and
// are not excluded by .dockerignore, and that COPY --from=build copies the
// binary and the data directory the builder makes.
func checkCopies(t *testing.T, copies []instruction) {
	t.Helper()
	ignored := dockerignore(t)
	fromBuild := map[string]string{}
	for _, c := range copies {
		fields := strings.Fields(c.args)
		var opts, paths []string
		for _, f := range fields {
			if strings.HasPrefix(f, "--") {
				opts = append(opts, f)
			} else {
				paths = append(paths, f)
			}
		}
		if len(paths) < 2 {
			t.Errorf("Dockerfile:%d: COPY needs a source and a destination", c.line)
			continue
		}
		src, dst := paths[:len(paths)-1], paths[len(paths)-1]
		if slicesContains(opts, "--from=build") {
			fromBuild[src[0]] = dst
			continue
		}
		for _, s := range src {
			if s == "." {
				continue
			}
			if _, err := os.Stat(filepath.Join(repoRoot, s)); err != nil {
				t.Errorf("Dockerfile:%d: COPY %s: %v", c.line, s, err)
			}
			if ignored[s] {
				t.Errorf("Dockerfile:%d: COPY %s, which .dockerignore excludes", c.line, s)
			}
		}
	}
	want := map[string]string{"/out/tollgate": "/usr/local/bin/tollgate", "/out/data": "/var/lib/tollgate"}
	for src, dst := range want {
		if fromBuild[src] != dst {
			t.Errorf("COPY --from=build %s %s is missing (got %v)", src, dst, fromBuild)
		}
	}
	for _, must := range []string{"go.mod", "go.sum", "cmd", "internal", "envoy", "policy", "xds", "extauthz", "ratelimit"} {
		if ignored[must] {
			t.Errorf(".dockerignore excludes %s, which the build needs", must)
		}
	}
}

// dockerignore returns the patterns of .dockerignore (this repository uses
// plain paths only).
func dockerignore(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	plain := regexp.MustCompile(`^[A-Za-z0-9._/*-]+$`)
	for _, l := range strings.Split(string(readFile(t, ".dockerignore")), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if !plain.MatchString(l) {
			t.Errorf(".dockerignore: %q is not a plain path pattern", l)
		}
		out[l] = true
	}
	return out
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
