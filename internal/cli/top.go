package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/top"
)

// topOptions are top's flags.
type topOptions struct {
	envoy    string
	interval time.Duration
	once     bool
	output   string
}

func newTopCmd() *cobra.Command {
	var o topOptions
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Live per-route request rate, error rates and p50/p99 latency from an Envoy's stats",
		Long: "Top scrapes an Envoy's admin /stats/prometheus every --interval and shows, per policy route, the " +
			"request rate, the 4xx and 5xx shares and the p50/p99 upstream latency over the last interval. Envoy " +
			"merges latency histograms at its stats flush (every 5 s by default), so keep --interval at 5s or more.",
		Example: `  tollgate top
  tollgate top --envoy http://127.0.0.1:9901 --interval 10s`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			if o.interval <= 0 {
				return &UsageError{fmt.Errorf("--interval must be positive")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runTop(ctx, cmd.OutOrStdout(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.envoy, "envoy", "http://127.0.0.1:9901", "the Envoy's admin URL")
	fl.DurationVar(&o.interval, "interval", 5*time.Second, "refresh interval")
	fl.BoolVar(&o.once, "once", false, "print one view (two scrapes --interval apart) and exit")
	addOutputFlag(cmd, &o.output)
	return cmd
}

// runTop refreshes the view every interval until ctx ends (or once).
func runTop(ctx context.Context, w io.Writer, o topOptions) error {
	c := &http.Client{Timeout: 5 * time.Second}
	prev, err := top.Scrape(ctx, c, o.envoy)
	if err != nil {
		return err
	}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := top.Scrape(ctx, c, o.envoy)
		if err != nil {
			return err
		}
		rows := top.Diff(prev, cur)
		if !o.once && o.output == "text" {
			fmt.Fprint(w, "\x1b[H\x1b[2J") // clear the terminal
		}
		if err := render(w, o.output, rows, func(w io.Writer) { _ = top.Render(w, o.envoy, o.interval, rows) }); err != nil {
			return err
		}
		if o.once {
			return nil
		}
		prev = cur
	}
}
