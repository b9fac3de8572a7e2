package extauthz

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// keyRecordOfResponse is the learnable record an ext_authz answer carries
// ("" when none).
func keyRecordOfResponse(resp *authv3.CheckResponse) string {
	return resp.GetDynamicMetadata().GetFields()[envoymod.MetadataKeyRecord].GetStringValue()
}

// learnFromService checks key with the service on a key route, as the
// ext_authz filter after the module would, and hands the answer's record
// to l.
func learnFromService(t *testing.T, f keyFixture, l *Local, key string) {
	t.Helper()
	resp := mustCheck(t, f.svc, checkReq(keyRoute("apiKey", nil), "GET", map[string]string{"x-api-key": key}))
	rec := keyRecordOfResponse(resp)
	if rec == "" {
		t.Fatalf("the service's answer for an opaque key carries no %s: %v", envoymod.MetadataKeyRecord, resp)
	}
	if err := l.Learn(key, rec, 0); err != nil {
		t.Fatalf("Learn: %v", err)
	}
}

// withRecordEpoch is record (envoymod.KeyRecord JSON) read in epoch.
func withRecordEpoch(t *testing.T, record, epoch string) string {
	t.Helper()
	var kr envoymod.KeyRecord
	if err := json.Unmarshal([]byte(record), &kr); err != nil {
		t.Fatal(err)
	}
	kr.Epoch = epoch
	b, err := json.Marshal(kr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withoutKeyRecord is d without the learnable record, which only the
// service publishes.
func withoutKeyRecord(d Decision) Decision {
	d.Metadata = slices.DeleteFunc(slices.Clone(d.Metadata), func(h Header) bool { return h.Name == envoymod.MetadataKeyRecord })
	return d
}

// successor derives l's successor serving cfg (the store's current
// exceptions, as the control plane's next push carries them).
func successor(t *testing.T, l *Local, cfg envoymod.FilterConfig) *Local {
	t.Helper()
	next, err := l.Derive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(next.Close)
	return next
}

// TestLocalLearnedKeysDecideAsCheck: an opaque key learned from the
// service's answer is decided by the Local as the service decides it now,
// after the store changed it: the exceptions table is its current state
// (revoked, tier and roles replaced, expiry shortened or lengthened).
func TestLocalLearnedKeysDecideAsCheck(t *testing.T) {
	f := newKeyFixture(t)
	soon := time.Now().Add(2 * time.Minute).Truncate(time.Second) // before the learned record's end
	hour := soon.Add(time.Hour)
	opaque := func(rec apikey.Record) (string, apikey.Record) {
		rec.Format = apikey.FormatOpaque
		return f.create(t, rec)
	}
	plain, _ := opaque(apikey.Record{Consumer: "acme", Tenant: "t1", Tier: "gold", Roles: []string{"user"}, ExpiresAt: soon})
	updated, u := opaque(apikey.Record{Consumer: "acme", Tier: "gold", Roles: []string{"user"}})
	revoked, r := opaque(apikey.Record{Consumer: "acme"})
	longer, lg := opaque(apikey.Record{Consumer: "acme", ExpiresAt: soon})
	for _, k := range []string{plain, updated, revoked, longer} {
		learnFromService(t, f, f.local, k)
	}
	ctx := context.Background()
	tier, roles, later := "basic", []string{"admin"}, hour
	if _, err := f.store.Update(ctx, u.ID, apikey.Change{Tier: &tier, Roles: &roles}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Revoke(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Update(ctx, lg.ID, apikey.Change{ExpiresAt: &later}); err != nil {
		t.Fatal(err)
	}
	next := successor(t, f.local, f.filterConfig(t, true))
	// The learned record's end of use: the latest Expiry a decision gets.
	end := time.Now().Add(apikey.LearnedRecordTTL)
	tests := []struct {
		name   string
		ext    map[string]string
		key    string
		status int
		expiry time.Time // of an allowed key; zero: the learned record's end (~end)
	}{
		{"unchanged", keyRoute("apiKey", nil), plain, 0, soon},
		{"unchanged, role held", keyRoute("jwt,apiKey", map[string]string{contract.KeyRoles: "user"}), plain, 0, soon},
		{"unchanged, scope needed", keyRoute("apiKey", map[string]string{contract.KeyScopes: "read"}), plain, 403, time.Time{}},
		{"updated: the exception's tier and roles", keyRoute("apiKey", map[string]string{contract.KeyRoles: "admin"}), updated, 0, time.Time{}},
		{"updated: the old role is gone", keyRoute("apiKey", map[string]string{contract.KeyRoles: "user"}), updated, 403, time.Time{}},
		{"revoked", keyRoute("apiKey", nil), revoked, 401, time.Time{}},
		{"expiry lengthened: the record's end, not the old expiry", keyRoute("apiKey", nil), longer, 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"x-api-key": tt.key}
			want := withoutKeyRecord(decisionFromCheck(mustCheck(t, f.svc, checkReq(tt.ext, "GET", h))))
			got := next.Decide(ctx, tt.ext, h)
			if got.Pass || got.Status != tt.status || want.Status != tt.status {
				t.Fatalf("local %d (%s, pass %t), service %d (%s), want %d", got.Status, got.Reason, got.Pass,
					want.Status, want.Reason, tt.status)
			}
			compareDecisions(t, got, want)
			switch {
			case tt.status != 0:
			case !tt.expiry.IsZero() && !got.Expiry.Equal(tt.expiry):
				t.Errorf("expiry %v, want the key's %v", got.Expiry, tt.expiry)
			case tt.expiry.IsZero() && (got.Expiry.After(end) || got.Expiry.Before(end.Add(-time.Minute))):
				t.Errorf("expiry %v, want the learned record's end (~%v)", got.Expiry, end)
			}
		})
	}
}

// TestLocalLearnedKeyBounds: a learned record serves while the table is
// fresh and of its epoch, for at most LearnedRecordTTL (the decision's
// Expiry never later), and the table keeps the most recent CacheSize
// records; otherwise the key passes to ext_authz again, never refused.
func TestLocalLearnedKeyBounds(t *testing.T) {
	f := newKeyFixture(t)
	now := time.Now()
	clock := func() time.Time { return now }
	cfg := f.filterConfig(t, true)
	cfg.CacheSize = 2
	l, err := NewLocal(context.Background(), cfg, LocalOptions{Options: Options{Logger: quietLogger()}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	var keys []string
	for range 3 {
		k, _ := f.create(t, apikey.Record{Consumer: "acme", Format: apikey.FormatOpaque})
		keys = append(keys, k)
	}
	ctx, ext := context.Background(), keyRoute("apiKey", nil)
	decide := func(l *Local, key string) Decision { return l.Decide(ctx, ext, map[string]string{"x-api-key": key}) }
	if d := decide(l, keys[0]); !d.Pass {
		t.Fatalf("not learned yet: %+v, want a pass", d)
	}
	learnFromService(t, f, l, keys[0])
	if d := decide(l, keys[0]); d.Pass || d.Status != 0 || !d.Expiry.Equal(now.Add(apikey.LearnedRecordTTL)) {
		t.Fatalf("learned: %+v, want allowed until %v", d, now.Add(apikey.LearnedRecordTTL))
	}
	stale, otherEpoch := cfg, cfg
	stale.Keys, otherEpoch.Keys = new(*cfg.Keys), new(*cfg.Keys)
	stale.Keys.Fresh, otherEpoch.Keys.Epoch = false, "another-epoch"
	if d := decide(successor(t, l, stale), keys[0]); !d.Pass {
		t.Errorf("a table not fresh: %+v, want a pass (ext_authz decides)", d)
	}
	if d := decide(successor(t, l, otherEpoch), keys[0]); !d.Pass {
		t.Errorf("another key-store epoch: %+v, want a pass", d)
	}
	if d := decide(successor(t, l, cfg), keys[0]); d.Pass || d.Status != 0 {
		t.Errorf("a successor of the same epoch: %+v, want the learned record allowed", d)
	}
	learnFromService(t, f, l, keys[1])
	learnFromService(t, f, l, keys[2])
	if d := decide(l, keys[0]); !d.Pass {
		t.Errorf("the oldest of 3 records in a table of 2: %+v, want a pass", d)
	}
	if d := decide(l, keys[2]); d.Pass {
		t.Errorf("the newest record: %+v, want it decided", d)
	}
	now = now.Add(apikey.LearnedRecordTTL)
	if d := decide(l, keys[2]); !d.Pass {
		t.Errorf("past LearnedRecordTTL: %+v, want a pass", d)
	}
	// An answer to a request passed on 8 s ago serves until
	// LearnedRecordTTL after the request, not after the answer.
	rec := keyRecordOfResponse(mustCheck(t, f.svc, checkReq(ext, "GET", map[string]string{"x-api-key": keys[1]})))
	if err := l.Learn(keys[1], rec, 8*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := decide(l, keys[1]); d.Pass || !d.Expiry.Equal(now.Add(apikey.LearnedRecordTTL-8*time.Second)) {
		t.Errorf("learned 8 s after its request: %+v, want allowed until %v", d, now.Add(apikey.LearnedRecordTTL-8*time.Second))
	}
}

// TestOpaqueExceptionsOutliveLearnedRecords: an opaque key's change stays
// in the exceptions table longer than a record read before it can be in
// use: read from a replica's cache, learned at most MaxLearnAge after its
// request, used LearnedRecordTTL from the request; with 2 minutes to spare
// for the control-plane replicas' clocks.
func TestOpaqueExceptionsOutliveLearnedRecords(t *testing.T) {
	if in := apikey.DefaultCacheTTL + MaxLearnAge + apikey.LearnedRecordTTL; apikey.OpaqueExceptionLife < in+2*time.Minute {
		t.Errorf("OpaqueExceptionLife %v, a learned record may be in use %v after its change: want 2 min to spare",
			apikey.OpaqueExceptionLife, in)
	}
}

// TestLocalLearnRefuses: Learn keeps nothing for a record that is not the
// key's, malformed or oversized, for a key that is not opaque, or when
// the Local cannot use it (no signed keys, a table not fresh).
func TestLocalLearnRefuses(t *testing.T) {
	f := newKeyFixture(t)
	key, _ := f.create(t, apikey.Record{Consumer: "acme", Format: apikey.FormatOpaque})
	other, _ := f.create(t, apikey.Record{Consumer: "evil", Format: apikey.FormatOpaque})
	signed, _ := f.create(t, apikey.Record{Consumer: "acme"})
	record := func(k string) string {
		return keyRecordOfResponse(mustCheck(t, f.svc, checkReq(keyRoute("apiKey", nil), "GET", map[string]string{"x-api-key": k})))
	}
	without, err := NewLocal(context.Background(), envoymod.FilterConfig{IdentityHeaders: testIdentityHeaders,
		KeyHeader: "x-api-key"}, LocalOptions{Options: Options{Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(without.Close)
	cfg := f.filterConfig(t, true)
	cfg.Keys.Epoch = ""
	noEpoch, err := NewLocal(context.Background(), cfg, LocalOptions{Options: Options{Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(noEpoch.Close)
	tests := []struct {
		name        string
		local       *Local
		key, record string
		age         time.Duration
	}{
		{"another key's record", f.local, key, record(other), 0},
		{"malformed", f.local, key, `{"id":`, 0},
		{"two records", f.local, key, record(key) + record(key), 0},
		{"unknown field", f.local, key, strings.Replace(record(key), `{`, `{"x":1,`, 1), 0},
		{"no consumer", f.local, key, strings.Replace(record(key), `"consumer":"acme"`, `"consumer":""`, 1), 0},
		{"oversized", f.local, key, record(key)[:len(record(key))-1] + `,"tenant":"` + strings.Repeat("a", envoymod.MaxKeyRecordLen) + `"}`, 0},
		{"a record of another key-store epoch", f.local, key, withRecordEpoch(t, record(key), "another"), 0},
		{"a record without an epoch", f.local, key, withRecordEpoch(t, record(key), ""), 0},
		{"a signed key", f.local, signed, record(key), 0},
		{"not an API key", f.local, "nonsense", record(key), 0},
		{"no signed keys", without, key, record(key), 0},
		{"a table not fresh", f.newLocal(t, false), key, record(key), 0},
		{"no epoch on either side", noEpoch, key, withRecordEpoch(t, record(key), ""), 0},
		{"an answer older than MaxLearnAge (a slow response)", f.local, key, record(key), MaxLearnAge + time.Millisecond},
		{"a negative age", f.local, key, record(key), -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.local.Learn(tt.key, tt.record, tt.age); err == nil {
				t.Fatalf("Learn accepted it")
			}
			if d := tt.local.Decide(context.Background(), keyRoute("apiKey", nil), map[string]string{"x-api-key": key}); d.Status == 0 && !d.Pass {
				t.Fatalf("a refused record decides the key: %+v", d)
			}
		})
	}
	if got := record(signed); got != "" {
		t.Errorf("a signed key's answer carries a record: %s", got)
	}
	learnFromService(t, f, f.local, key)
	d := f.local.Decide(context.Background(), keyRoute("apiKey", nil), map[string]string{"x-api-key": key})
	if d.Status != 0 || d.Pass || slices.ContainsFunc(d.Metadata, func(h Header) bool { return h.Name == envoymod.MetadataKeyRecord }) {
		t.Errorf("a learned key's decision: %+v, want allowed without a record in its metadata", d)
	}
}
