package cli

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/admin"
)

const envCAFile = "TOLLGATE_CA_FILE"

// clientTLS are the client verbs' flags for an HTTPS admin API and for
// compare-and-set pushes.
type clientTLS struct {
	caFile string
	expect string
}

func (c *clientTLS) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.caFile, "ca-file", "", "PEM CA bundle to trust for an https:// --server (env "+envCAFile+"; default: the system roots)")
	if cmd.Name() == "push" {
		cmd.Flags().StringVar(&c.expect, "expect-version", "", "push only if this is still the current version; otherwise fail with a conflict (exit 1)")
	}
}

// apply makes cl trust --ca-file.
func (c *clientTLS) apply(cl *admin.Client) (*admin.Client, error) {
	path := c.caFile
	if path == "" {
		path = os.Getenv(envCAFile)
	}
	if path == "" {
		return cl, nil
	}
	pool, err := loadCAs(path)
	if err != nil {
		return nil, &UsageError{fmt.Errorf("--ca-file: %w", err)}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cl.HTTP.Transport = tr
	return cl, nil
}
