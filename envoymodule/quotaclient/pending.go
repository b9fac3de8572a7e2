package quotaclient

import (
	"log/slog"
	"math"
	"sort"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate/tollgate/policy/ir"
)

// MaxPendingBuckets bounds the buckets the Client keeps (live ones and
// those with undelivered counts), ~150 bytes each. It must exceed the
// Store's own bound (the module's table: 100,000 buckets, asserted in
// envoymodule/limits.go): a live bucket the Client does not keep is never
// reported, so never assigned, and its requests never reach the account.
// At the bound a new live bucket takes the place of a bucket the store no
// longer has (its undelivered counts dropped); only when every kept
// bucket is live are a new bucket's counts dropped, until some leave.
const MaxPendingBuckets = 1 << 17

// reportChunk is the most buckets one report message carries (~100
// bytes each: far below gRPC's 4 MiB default message limit); a tick with
// more sends several messages, each answered on its own.
const reportChunk = 1024

// entry is one bucket's counts not delivered yet, and since when they
// run: its last delivered report, or when the Client first saw it.
type entry struct {
	allowed, denied uint64
	since           time.Time
	reported        bool // some report of it was delivered
	live            bool // in the store's last Drain
}

// pending is every bucket the Client knows: the store's live buckets and
// those whose counts are not delivered yet.
type pending struct {
	m       map[BucketID]*entry
	max     int
	dropped uint64 // requests whose counts were dropped (over max)
}

func newPending(max int) *pending { return &pending{m: map[BucketID]*entry{}, max: max} }

// merge adds a Drain's counts, seen at now. Buckets missing from it are
// forgotten once they have nothing left to deliver. New buckets beyond
// max take the places of buckets missing from it (whose undelivered
// counts are dropped); the counts of those still beyond max are dropped.
// Drops are logged.
func (p *pending) merge(us []Usage, now time.Time, log *slog.Logger) {
	for _, e := range p.m {
		e.live = false
	}
	var over []Usage // new buckets beyond max
	for _, u := range us {
		e := p.m[u.ID]
		if e == nil {
			if len(p.m) >= p.max {
				over = append(over, u)
				continue
			}
			e = &entry{since: now}
			p.m[u.ID] = e
		}
		e.add(u)
	}
	p.forgetDead()
	dropped := p.admitOver(over, now)
	if dropped > 0 {
		p.dropped += dropped
		log.Warn("rlqs client: too many buckets; usage dropped", "max_buckets", p.max, "requests", dropped)
	}
}

// add adds u's counts to e, now live.
func (e *entry) add(u Usage) {
	e.allowed = addSat(e.allowed, u.Allowed)
	e.denied = addSat(e.denied, u.Denied)
	e.live = true
}

// admitOver keeps the new live buckets of over in the places of buckets
// the store no longer has, dropping those buckets' undelivered counts,
// and drops the counts of the buckets left over; it returns the requests
// dropped. Called after the Drain's live buckets are marked.
func (p *pending) admitOver(over []Usage, now time.Time) (dropped uint64) {
	if len(over) == 0 {
		return 0
	}
	for id, e := range p.m {
		if len(over) == 0 {
			break
		}
		if e.live {
			continue
		}
		dropped += e.allowed + e.denied
		delete(p.m, id)
		ne := &entry{since: now}
		ne.add(over[0])
		p.m[over[0].ID] = ne
		over = over[1:]
	}
	for _, u := range over {
		dropped += u.Allowed + u.Denied
	}
	return dropped
}

// forgetDead forgets buckets the store no longer has and that have
// nothing to deliver.
func (p *pending) forgetDead() {
	for id, e := range p.m {
		if !e.live && e.allowed == 0 && e.denied == 0 {
			delete(p.m, id)
		}
	}
}

// select_ returns the ids to report, sorted: all of them, or those never
// reported (a new bucket's report).
func (p *pending) ids(all bool) []BucketID {
	ids := make([]BucketID, 0, len(p.m))
	for id, e := range p.m {
		if all || !e.reported {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].Bucket != ids[j].Bucket {
			return ids[i].Bucket < ids[j].Bucket
		}
		return ids[i].Consumer < ids[j].Consumer
	})
	return ids
}

// build returns the report of ids at now.
func (p *pending) build(domain string, ids []BucketID, now time.Time) *rlqsv3.RateLimitQuotaUsageReports {
	r := &rlqsv3.RateLimitQuotaUsageReports{Domain: domain,
		BucketQuotaUsages: make([]*rlqsv3.RateLimitQuotaUsageReports_BucketQuotaUsage, 0, len(ids))}
	for _, id := range ids {
		e := p.m[id]
		r.BucketQuotaUsages = append(r.BucketQuotaUsages, &rlqsv3.RateLimitQuotaUsageReports_BucketQuotaUsage{
			BucketId:           bucketID(id),
			TimeElapsed:        durationpb.New(elapsed(now.Sub(e.since), e.reported)),
			NumRequestsAllowed: e.allowed,
			NumRequestsDenied:  e.denied,
		})
	}
	return r
}

// delivered records that ids were reported at now: their counts restart.
func (p *pending) delivered(ids []BucketID, now time.Time) {
	for _, id := range ids {
		if e := p.m[id]; e != nil {
			e.allowed, e.denied, e.since, e.reported = 0, 0, now, true
		}
	}
	p.forgetDead()
}

// forget drops a bucket (abandoned by the server).
func (p *pending) forget(id BucketID) { delete(p.m, id) }

// elapsed is a report's time_elapsed for counts running d: whole
// seconds, rounded to the nearest; at least one for a bucket reported
// before (the server reads 0 as a bucket just built, and counts a report
// idle only when it covers time).
func elapsed(d time.Duration, reported bool) time.Duration {
	s := d.Round(time.Second)
	if reported && s < time.Second {
		return time.Second
	}
	return max(0, s)
}

// bucketID is id as an RLQS bucket id: the "bucket" and "consumer"
// entries (an empty consumer is left out, as the filter path's matcher
// builds no entry without a value).
func bucketID(id BucketID) *rlqsv3.BucketId {
	m := map[string]string{ir.BucketKeyBucket: id.Bucket}
	if id.Consumer != "" {
		m[ir.BucketKeyConsumer] = id.Consumer
	}
	return &rlqsv3.BucketId{Bucket: m}
}

// chunks splits ids into slices of at most n.
func chunks(ids []BucketID, n int) [][]BucketID {
	var out [][]BucketID
	for len(ids) > n {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

// addSat is a+b, saturating.
func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}
