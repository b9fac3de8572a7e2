package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// envoyOptions are the -row options that change how Envoy runs: under
// valgrind's callgrind (instructions per push instead of the 10 ms CPU
// ticks of /proc), and with only the named tag extractors (an ablation:
// Tollgate's bootstrap uses all of Envoy's defaults).
type envoyOptions struct {
	callgrind bool
	statsTags string // comma-separated default tag names; "" keeps all, "none" none
	reject    string // a regular expression of stat names Envoy does not create ("" none)
}

// wrap returns the command line that runs Envoy's args, and the file
// callgrind writes its counts to ("" without callgrind).
func (o envoyOptions) wrap(dir string, args []string) ([]string, string) {
	if !o.callgrind {
		return args, ""
	}
	out := filepath.Join(dir, "cg.out")
	return append([]string{"valgrind", "--tool=callgrind", "--callgrind-out-file=" + out}, args...), out
}

// startTimeout bounds the wait for Envoy to serve the first policy; under
// callgrind Envoy runs ~50 times slower.
func (o envoyOptions) startTimeout() time.Duration {
	if o.callgrind {
		return 10 * time.Minute
	}
	return time.Minute
}

// bootstrap applies statsTags to b's stats settings.
func (o envoyOptions) bootstrap(b *bootstrapv3.Bootstrap) {
	if o.reject != "" {
		b.StatsConfig.StatsMatcher = &metricsv3.StatsMatcher{StatsMatcher: &metricsv3.StatsMatcher_ExclusionList{
			ExclusionList: &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: o.reject}},
			}}},
		}}
	}
	if o.statsTags == "" {
		return
	}
	b.StatsConfig.UseAllDefaultTags = wrapperspb.Bool(false)
	if o.statsTags == "none" {
		return
	}
	for _, n := range strings.Split(o.statsTags, ",") {
		b.StatsConfig.StatsTags = append(b.StatsConfig.StatsTags, &metricsv3.TagSpecifier{TagName: n})
	}
}

// zero resets callgrind's counters of Envoy (pid) before the measured
// pushes.
func (o envoyOptions) zero(pid int) error {
	if !o.callgrind {
		return nil
	}
	if b, err := exec.Command("callgrind_control", "-z", strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return fmt.Errorf("callgrind_control -z: %w: %s", err, b)
	}
	return nil
}

var cgSummary = regexp.MustCompile(`(?m)^summary: (\d+)`)

// instructions dumps callgrind's counters of Envoy (pid) and returns the
// instructions Envoy ran since zero.
func (o envoyOptions) instructions(pid int, out string) (int64, error) {
	if b, err := exec.Command("callgrind_control", "-d", strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control -d: %w: %s", err, b)
	}
	files, _ := filepath.Glob(out + ".*")
	var sum int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		if m := cgSummary.FindSubmatch(b); m != nil {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			sum += n
		}
	}
	if sum == 0 {
		return 0, fmt.Errorf("no callgrind counts in %s.*", out)
	}
	return sum, nil
}
