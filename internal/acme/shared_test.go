package acme

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/acmetest"
	"github.com/tollgate/tollgate/internal/store"
)

// replica is one control plane's ACME part on the shared Redis store.
type replica struct {
	kv      *store.RedisACME
	storage *Storage
	resp    *Responder
	got     chan *Certificate
	logs    *lockedBuffer
}

func newReplica(t *testing.T, redisAddr string) *replica {
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { rdb.Close() })
	st, err := store.OpenRedis(context.Background(), rdb, store.RedisOptions{Prefix: "acme-test:"})
	if err != nil {
		t.Fatal(err)
	}
	kv := st.ACME()
	return &replica{kv: kv, storage: NewSharedStorage(kv), resp: NewSharedResponder(kv), got: make(chan *Certificate, 16), logs: &lockedBuffer{}}
}

// run starts the replica's Manager until the test ends; it re-reads the
// shared certificate every poll and, with wake, on the store's change
// notifications.
func (r *replica) run(t *testing.T, p *acmetest.Pebble, client *http.Client, poll time.Duration, wake bool) {
	ctx, cancel := context.WithCancel(context.Background())
	var changes <-chan struct{}
	if wake {
		changes = r.kv.Changes(ctx)
	}
	m, err := New(Options{
		Wake:      changes,
		Directory: p.DirectoryURL, Email: "ops@example.com", Domains: []string{"api.example.com"},
		Storage: r.storage, Responder: r.resp, HTTPClient: client, RenewBefore: time.Hour,
		RetryMin: 200 * time.Millisecond, RetryMax: time.Second, Poll: poll,
		OnCertificate: func(c *Certificate) error { r.got <- c; return nil },
		Logger:        slog.New(slog.NewTextHandler(r.logs, nil)),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replica log:\n%s", r.logs.String())
		}
	})
}

// sharedRig is two replicas on one Redis, and Pebble whose VA reaches
// replica B's responder only.
func sharedRig(t *testing.T) (a, b *replica, p *acmetest.Pebble) {
	rd := harness.StartRedis(t)
	a, b = newReplica(t, rd), newReplica(t, rd)
	chal := httptest.NewServer(b.resp)
	t.Cleanup(chal.Close)
	_, port, _ := net.SplitHostPort(chal.Listener.Addr().String())
	n, _ := strconv.Atoi(port)
	p = acmetest.Start(t, acmetest.Options{HTTPPort: n, Validity: 9 * time.Second})
	return a, b, p
}

// TestSharedStorageOrderFromAValidatedThroughB: replica B cannot reach the
// CA (its client does not trust Pebble), so replica A orders every
// certificate; Pebble validates through B's responder, which answers A's
// tokens from Redis; B adopts A's certificate and its renewal.
func TestSharedStorageOrderFromAValidatedThroughB(t *testing.T) {
	t.Parallel() // waits on Pebble and renewal timers (see TestMain)
	a, b, p := sharedRig(t)
	a.run(t, p, p.Client, 100*time.Millisecond, false)
	b.run(t, p, &http.Client{Timeout: 2 * time.Second}, 100*time.Millisecond, false) // system roots: Pebble's TLS fails
	fromA, fromB := receive(t, a.got, 30*time.Second), receive(t, b.got, 10*time.Second)
	if fromA.Serial != fromB.Serial {
		t.Fatalf("replicas serve serials %s and %s, want A's certificate on both", fromA.Serial, fromB.Serial)
	}
	checkChain(t, fromB, p.Roots(), "api.example.com")
	if p.ValidationsOf("api.example.com") == 0 {
		t.Fatal("Pebble's VA fetched no token through B")
	}
	renewedA, renewedB := receive(t, a.got, 15*time.Second), receive(t, b.got, 10*time.Second)
	if renewedA.Serial == fromA.Serial || renewedB.Serial != renewedA.Serial {
		t.Fatalf("renewal: A %s, B %s (first %s); want one new certificate on both", renewedA.Serial, renewedB.Serial, fromA.Serial)
	}
}

// TestSharedStorageOneOrderPerRound: with both replicas able to order, the
// order lock lets one of them obtain each certificate and the other adopts
// it: the replicas deliver one distinct serial for the first certificate
// and one more for the renewal, never two at once. They poll only once a
// minute: the waiting replica learns of the new certificate from the
// store's change notification.
func TestSharedStorageOneOrderPerRound(t *testing.T) {
	t.Parallel() // waits on Pebble and renewal timers (see TestMain)
	a, b, p := sharedRig(t)
	a.run(t, p, p.Client, time.Minute, true)
	b.run(t, p, p.Client, time.Minute, true)
	var mu sync.Mutex
	serials := map[string]bool{}
	collect := func(ch <-chan *Certificate) *Certificate {
		c := receive(t, ch, 30*time.Second)
		mu.Lock()
		serials[c.Serial] = true
		mu.Unlock()
		return c
	}
	first := []*Certificate{collect(a.got), collect(b.got)}
	if len(serials) != 1 {
		t.Fatalf("first round delivered %d distinct certificates, want 1", len(serials))
	}
	second := []*Certificate{collect(a.got), collect(b.got)}
	if len(serials) != 2 || second[0].Serial == first[0].Serial {
		t.Fatalf("after the renewal %d distinct certificates, want 2", len(serials))
	}
	// Nothing else arrives before the next renewal is due (a third of 9 s).
	select {
	case c := <-a.got:
		if c.NotBefore.Before(second[0].NotBefore.Add(2 * time.Second)) {
			t.Fatalf("A got an extra certificate %s right after the renewal", c.Serial)
		}
	case c := <-b.got:
		if c.NotBefore.Before(second[0].NotBefore.Add(2 * time.Second)) {
			t.Fatalf("B got an extra certificate %s right after the renewal", c.Serial)
		}
	case <-time.After(time.Second):
	}
}

// TestSharedResponderAnswersOtherReplicasTokens checks the token path
// through Redis, its expiry and CleanUp.
func TestSharedResponderAnswersOtherReplicasTokens(t *testing.T) {
	rd := harness.StartRedis(t)
	a, b := newReplica(t, rd), newReplica(t, rd)
	ctx := context.Background()
	if err := a.resp.Present(ctx, "Api.Example.com", "tok_en-1", "tok_en-1.thumb"); err != nil {
		t.Fatal(err)
	}
	get := func(host, token string) int {
		req := httptest.NewRequest(http.MethodGet, ChallengePathPrefix+token, nil)
		req.Host = host
		w := httptest.NewRecorder()
		b.resp.ServeHTTP(w, req)
		if w.Code == 200 && w.Body.String() != "tok_en-1.thumb" {
			t.Fatalf("body %q", w.Body.String())
		}
		return w.Code
	}
	for _, tt := range []struct {
		host, token string
		want        int
	}{
		{"api.example.com:80", "tok_en-1", 200},
		{"other.example.com", "tok_en-1", 404},
		{"api.example.com", "unknown", 404},
		{"api.example.com", "..%2f", 404},
	} {
		if got := get(tt.host, tt.token); got != tt.want {
			t.Errorf("B GET %s for %s = %d, want %d", tt.token, tt.host, got, tt.want)
		}
	}
	if err := a.resp.Present(ctx, "api.example.com", "bad/token", "x"); err == nil {
		t.Error("a token outside the base64url alphabet was published")
	}
	if err := a.resp.CleanUp(ctx, "api.example.com", "tok_en-1", ""); err != nil {
		t.Fatal(err)
	}
	if got := get("api.example.com", "tok_en-1"); got != 404 {
		t.Errorf("after CleanUp on A, B answers %d, want 404", got)
	}
}
