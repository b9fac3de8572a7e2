package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/acmetest"
)

// TestACMEReplicasShareRedis runs two control-plane replicas on one Redis
// store. Replica B cannot reach the CA (it does not trust Pebble's HTTPS),
// so replica A orders every certificate, while Pebble's VA validates
// through the Envoy connected to B: B's responder answers A's tokens from
// Redis. Both replicas' Envoys then present the Pebble-issued certificate,
// and a renewal reaches both.
func TestACMEReplicasShareRedis(t *testing.T) {
	t.Parallel() // waits on timers and asserts no latency (e2e/doc.go)
	testACMEReplicasShare(t, "redis://"+harness.StartRedis(t)+"/0")
}

// TestACMEReplicasShareRedisCluster is TestACMEReplicasShareRedis on a
// Redis Cluster of three masters and three replicas: accounts,
// certificates, challenge tokens, the order lock and the change channel.
func TestACMEReplicasShareRedisCluster(t *testing.T) {
	t.Parallel() // waits on timers and asserts no latency (e2e/doc.go)
	testACMEReplicasShare(t, harness.StartRedisCluster(t).URL())
}

func testACMEReplicasShare(t *testing.T, storeURL string) {
	httpP, httpsP := harness.FreePort(t), harness.FreePort(t)
	pebble := acmetest.Start(t, acmetest.Options{HTTPPort: httpP, Validity: 9 * time.Second})
	echo := harness.StartUpstream(t, "echo")
	caFile := writeFile(t, "pebble-api.pem", string(pebble.APICertPEM))
	acmeArgs := func(ca bool) []string {
		args := []string{"--acme-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), "--acme-retry", "500ms"}
		if ca {
			args = append(args, "--acme-ca-file", caFile)
		}
		return args
	}
	a := startReplicaURL(t, storeURL, fmt.Sprintf(acmePolicy, httpP, httpsP, pebble.DirectoryURL, echo.Addr()), acmeArgs(true)...)
	b := startReplicaURL(t, storeURL, "", acmeArgs(false)...)
	eb := b.envoy("public", "acme-b", "delta")
	roots := pebble.Roots()
	ctx := testCtx(t, 40*time.Second)

	// Only B's Envoy listens yet: the VA's requests all go through it.
	start := time.Now()
	var first string
	if err := harness.WaitFor(ctx, func() (bool, error) {
		leaf, err := acmeHandshake(httpsP, roots)
		if err == nil {
			first = leaf.SerialNumber.Text(16)
		}
		return err == nil, nil
	}); err != nil {
		t.Fatalf("B's Envoy never presented a Pebble certificate: %v\nA:\n%s\nB:\n%s", err, a.cp.LogTail(30), b.cp.LogTail(30))
	}
	t.Logf("first certificate on B's Envoy %s after both replicas started", time.Since(start).Round(time.Millisecond))
	if n, _, err := eb.Stat(ctx, "cluster.tollgate_acme.upstream_rq_200"); err != nil || n == 0 {
		t.Fatalf("B's Envoy answered no challenge from B's responder (200s = %d, %v)", n, err)
	}
	if !strings.Contains(a.cp.Logs(), "acme: certificate obtained") || strings.Contains(b.cp.Logs(), "acme: certificate obtained") {
		t.Fatalf("want A to obtain the certificate and B (no CA trust) not to\nA:\n%s\nB:\n%s", a.cp.LogTail(20), b.cp.LogTail(20))
	}
	if !strings.Contains(b.cp.Logs(), "acme: using the certificate another replica obtained") {
		t.Fatalf("B did not adopt A's certificate:\n%s", b.cp.LogTail(20))
	}
	checkEchoOverTLS(t, httpsP, roots)

	// A's Envoy joins (the same listeners, SO_REUSEPORT); a renewal must
	// reach both Envoys.
	ea := a.envoy("public", "acme-a", "delta")
	var common string
	if err := harness.WaitFor(ctx, func() (bool, error) {
		sa, sb := envoyACMESerials(ctx, ea), envoyACMESerials(ctx, eb)
		for _, s := range sa {
			if s != first && slices.Contains(sb, s) {
				common = s
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("no renewed certificate reached both Envoys (first %s): %v\nA:\n%s\nB:\n%s", first, err, a.cp.LogTail(20), b.cp.LogTail(20))
	}
	t.Logf("renewed certificate %s on both Envoys %s after both replicas started", common, time.Since(start).Round(time.Millisecond))
	if leaf, err := acmeHandshake(httpsP, roots); err != nil {
		t.Fatalf("after the renewal: %v", err)
	} else if leaf.SerialNumber.Text(16) == first {
		t.Fatal("an Envoy still presents the first certificate after the renewal")
	}
}

// envoyACMESerials returns the serial numbers (lower-case hex) of the
// api.example.com certificates e has loaded (admin /certs).
func envoyACMESerials(ctx context.Context, e *harness.Envoy) []string {
	code, body, err := e.Admin(ctx, "/certs")
	if err != nil || code != 200 {
		return nil
	}
	var dump struct {
		Certificates []struct {
			CertChain []struct {
				Serial string `json:"serial_number"`
				SANs   []struct {
					DNS string `json:"dns"`
				} `json:"subject_alt_names"`
			} `json:"cert_chain"`
		} `json:"certificates"`
	}
	if json.Unmarshal(body, &dump) != nil {
		return nil
	}
	var out []string
	for _, c := range dump.Certificates {
		for _, cc := range c.CertChain {
			for _, san := range cc.SANs {
				if san.DNS == "api.example.com" {
					out = append(out, strings.TrimLeft(strings.ToLower(cc.Serial), "0"))
				}
			}
		}
	}
	return out
}
