package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/cli"
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

// stage is one build stage of the Dockerfile: its FROM arguments and its
// instructions after FROM.
type stage struct {
	from instruction
	name string // the AS name; "" for the last (runtime) stage
	ins  []instruction
}

// stages splits the Dockerfile's instructions at each FROM.
func stages(t *testing.T, ins []instruction) []stage {
	t.Helper()
	var out []stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			_, name, _ := strings.Cut(in.args, " AS ")
			out = append(out, stage{from: in, name: name})
			continue
		}
		if len(out) == 0 {
			t.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
		}
		out[len(out)-1].ins = append(out[len(out)-1].ins, in)
	}
	return out
}

// dockerStages parses the repository's Dockerfile into its stages.
func dockerStages(t *testing.T) []stage {
	t.Helper()
	return stages(t, parseDockerfile(t, string(readFile(t, "Dockerfile"))))
}

// env returns the stage's ENV settings (KEY=VALUE).
func (s stage) env() []string {
	var out []string
	for _, in := range s.ins {
		if in.cmd == "ENV" {
			out = append(out, strings.Fields(in.args)...)
		}
	}
	return out
}

// goBuild returns the stage's RUN that runs go build ("" if none).
func (s stage) goBuild() string {
	for _, in := range s.ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			return in.args
		}
	}
	return ""
}

// TestDockerfile checks the tollgate image's build: a pinned golang:1.27
// builder (the release go.mod's go line names: the image's Go does not
// download toolchains) with CGO off and the version ldflags; a bookworm
// builder of the Envoy module with cgo, running `make module`'s go build;
// a distroless static nonroot runtime that runs as nonroot; and COPY
// sources that exist (in the build context, which .dockerignore must not
// hide).
func TestDockerfile(t *testing.T) {
	st := dockerStages(t)
	wantFroms := []string{"golang:" + goModRelease(t, "go.mod") + " AS build",
		"golang:" + goModRelease(t, "envoymodule/go.mod") + "-bookworm AS module",
		"gcr.io/distroless/static-debian12:nonroot"}
	if len(st) != len(wantFroms) {
		t.Fatalf("%d stages, want %d: %v", len(st), len(wantFroms), st)
	}
	for i, s := range st {
		if s.from.args != wantFroms[i] {
			t.Errorf("Dockerfile:%d: FROM %s, want FROM %s (go.mod's and envoymodule/go.mod's go lines)", s.from.line, s.from.args, wantFroms[i])
		}
	}
	build, module, runtime := st[0], st[1], st[2]
	checkBinaryStage(t, build)
	checkModuleStage(t, module)
	var user, entrypoint string
	for _, in := range runtime.ins {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		}
	}
	if user != "nonroot:nonroot" {
		t.Errorf("the last USER is %q, want nonroot:nonroot", user)
	}
	if entrypoint != `["/usr/local/bin/tollgate"]` {
		t.Errorf("ENTRYPOINT %s, want [\"/usr/local/bin/tollgate\"] (compose health checks call that path)", entrypoint)
	}
	var copies []instruction
	for _, s := range st {
		for _, in := range s.ins {
			if in.cmd == "COPY" {
				copies = append(copies, in)
			}
		}
	}
	checkCopies(t, copies)
}

// checkBinaryStage: the binary's builder is static (CGO_ENABLED=0) and
// stamps the version.
func checkBinaryStage(t *testing.T, s stage) {
	t.Helper()
	if !slices.Contains(s.env(), "CGO_ENABLED=0") {
		t.Errorf("stage build does not set ENV CGO_ENABLED=0")
	}
	buildRun := s.goBuild()
	for _, want := range []string{"-trimpath", "-X github.com/tollgate/tollgate/internal/version.Version=${VERSION}", "./cmd/tollgate", "-o /out/tollgate"} {
		if !strings.Contains(buildRun, want) {
			t.Errorf("go build line %q lacks %q", buildRun, want)
		}
	}
}

// moduleOut is where the module stage writes the library.
const moduleOut = "/out/libtollgate_envoy.so"

// checkModuleStage: the module's builder has cgo on and runs exactly the
// go build of the Makefile's module target, into moduleOut.
func checkModuleStage(t *testing.T, s stage) {
	t.Helper()
	if !slices.Contains(s.env(), "CGO_ENABLED=1") {
		t.Errorf("stage module does not set ENV CGO_ENABLED=1 (the module is cgo)")
	}
	want := makeModuleBuild(t)
	if run := s.goBuild(); run != want && !strings.HasPrefix(run, want+" && ") {
		t.Errorf("stage module runs %q, want `make module`'s %q first", run, want)
	}
}

// makeModuleBuild returns the Makefile's module target's go build recipe
// line with $(GO) as go and $(MODULE_LIB) as moduleOut.
func makeModuleBuild(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^module:.*\n(?:\t.*\n)*?\t(cd envoymodule && \$\(GO\) build .*)$`).FindSubmatch(readFile(t, "Makefile"))
	if m == nil {
		t.Fatal("the Makefile's module target has no `cd envoymodule && $(GO) build` line")
	}
	return strings.NewReplacer("$(GO)", "go", "$(MODULE_LIB)", moduleOut).Replace(strings.TrimSpace(string(m[1])))
}

// goModRelease returns the Go release (major.minor, e.g. 1.27) of a go.mod's
// go line.
func goModRelease(t *testing.T, gomod string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readFile(t, gomod))
	if m == nil {
		t.Fatalf("%s has no go line", gomod)
	}
	return string(m[1])
}

// imageCopy is a COPY --from=<stage> of the Dockerfile.
type imageCopy struct {
	dst   string
	chown string // the --chown value, "" without
}

// stageCopies returns the Dockerfile's COPY --from=<stage> instructions,
// keyed by "<stage>:<source>".
func stageCopies(t *testing.T) map[string]imageCopy {
	t.Helper()
	out := map[string]imageCopy{}
	for _, s := range dockerStages(t) {
		for _, in := range s.ins {
			opts, paths := copyArgs(in)
			from, chown := "", ""
			for _, o := range opts {
				if v, ok := strings.CutPrefix(o, "--from="); ok {
					from = v
				}
				if v, ok := strings.CutPrefix(o, "--chown="); ok {
					chown = v
				}
			}
			if in.cmd == "COPY" && from != "" && len(paths) == 2 {
				out[from+":"+paths[0]] = imageCopy{dst: paths[1], chown: chown}
			}
		}
	}
	return out
}

// copyArgs splits a COPY's arguments into options (--x=y) and paths.
func copyArgs(c instruction) (opts, paths []string) {
	for _, f := range strings.Fields(c.args) {
		if strings.HasPrefix(f, "--") {
			opts = append(opts, f)
		} else {
			paths = append(paths, f)
		}
	}
	return opts, paths
}

// checkCopies checks that COPY from the context names files that exist and
// are not excluded by .dockerignore, and that the runtime image gets the
// binary, the data directory the builder makes (owned by nonroot), the
// Envoy module where `tollgate envoy-module install` reads it by default,
// and the nonroot-owned directory compose mounts the module's volume on.
func checkCopies(t *testing.T, copies []instruction) {
	t.Helper()
	ignored := dockerignore(t)
	for _, c := range copies {
		opts, paths := copyArgs(c)
		if len(paths) < 2 {
			t.Errorf("Dockerfile:%d: COPY needs a source and a destination", c.line)
			continue
		}
		if slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "--from=") }) {
			continue
		}
		for _, s := range paths[:len(paths)-1] {
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
	got := stageCopies(t)
	want := map[string]imageCopy{
		"build:/out/tollgate":      {dst: "/usr/local/bin/tollgate"},
		"build:/out/data":          {dst: "/var/lib/tollgate", chown: "65532:65532"},
		"module:" + moduleOut:      {dst: cli.DefaultEnvoyModulePath},
		"module:/out/envoy-module": {dst: imageModuleVolumeDir, chown: "65532:65532"},
	}
	for src, w := range want {
		if got[src] != w {
			t.Errorf("COPY --from=%s: got %+v, want %+v", src, got[src], w)
		}
	}
	for _, must := range []string{"go.mod", "go.sum", "cmd", "internal", "envoy", "policy", "xds", "extauthz", "ratelimit", "envoymodule"} {
		if ignored[must] {
			t.Errorf(".dockerignore excludes %s, which the build needs", must)
		}
	}
}

// imageModuleVolumeDir is the image's empty, nonroot-owned directory that
// the compose file mounts the Envoy module's volume on in the install
// service: Docker initialises an empty named volume from it, so uid 65532
// can write there.
const imageModuleVolumeDir = "/var/lib/tollgate-envoy-module"

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
