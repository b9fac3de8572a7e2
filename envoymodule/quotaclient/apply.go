package quotaclient

import (
	"context"
	"fmt"
	"log/slog"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/tollgate/tollgate/policy/ir"
)

// apply hands a response's actions to the store, in order: an abandon
// action drops the bucket (and its undelivered counts: the server
// abandons only buckets it saw idle), an assignment is applied as sent.
// Actions the module cannot apply (a strategy other than a blanket rule
// or a token bucket) are skipped and logged.
func (l *loop) apply(resp *rlqsv3.RateLimitQuotaResponse) {
	for _, a := range resp.GetBucketAction() {
		id := fromBucketID(a.GetBucketId())
		if a.GetAbandonAction() != nil {
			l.pending.forget(id)
			l.c.store.Abandon(id)
			l.debug("rlqs client: bucket abandoned", "bucket", id.Bucket, "consumer", id.Consumer)
			continue
		}
		as, err := assignment(id, a.GetQuotaAssignmentAction())
		if err != nil {
			l.c.log.Warn("rlqs client: action skipped", "bucket", id.Bucket, "err", err)
			continue
		}
		l.c.store.Assign(as)
		l.debug("rlqs client: assignment", "bucket", id.Bucket, "consumer", id.Consumer, "kind", as.Kind,
			"max_tokens", as.MaxTokens, "tokens_per_fill", as.TokensPerFill, "fill_interval", as.FillInterval, "ttl", as.TTL)
	}
}

// debug logs at debug level, building nothing when it is off.
func (l *loop) debug(msg string, args ...any) {
	if l.c.log.Enabled(context.Background(), slog.LevelDebug) {
		l.c.log.Debug(msg, args...)
	}
}

// assignment reads a quota assignment action for id.
func assignment(id BucketID, qa *rlqsv3.RateLimitQuotaResponse_BucketAction_QuotaAssignmentAction) (Assignment, error) {
	if qa == nil {
		return Assignment{}, fmt.Errorf("neither an assignment nor an abandon action")
	}
	as := Assignment{ID: id, TTL: qa.GetAssignmentTimeToLive().AsDuration()}
	switch st := qa.GetRateLimitStrategy().GetStrategy().(type) {
	case *typev3.RateLimitStrategy_TokenBucket:
		tb := st.TokenBucket
		as.Kind, as.MaxTokens, as.TokensPerFill, as.FillInterval = TokenBucket, uint64(tb.GetMaxTokens()), 1, tb.GetFillInterval().AsDuration()
		if tb.GetTokensPerFill() != nil { // unset is 1 (envoy.type.v3.TokenBucket)
			as.TokensPerFill = uint64(tb.GetTokensPerFill().GetValue())
		}
		if as.MaxTokens == 0 || as.TokensPerFill == 0 || as.FillInterval <= 0 {
			return Assignment{}, fmt.Errorf("invalid token bucket %v", tb)
		}
	case *typev3.RateLimitStrategy_BlanketRule_:
		switch st.BlanketRule {
		case typev3.RateLimitStrategy_ALLOW_ALL:
			as.Kind = AllowAll
		case typev3.RateLimitStrategy_DENY_ALL:
			as.Kind = DenyAll
		default:
			return Assignment{}, fmt.Errorf("unknown blanket rule %v", st.BlanketRule)
		}
	default:
		return Assignment{}, fmt.Errorf("unsupported strategy %T", st)
	}
	return as, nil
}

// fromBucketID reads an RLQS bucket id's "bucket" and "consumer" entries.
func fromBucketID(id *rlqsv3.BucketId) BucketID {
	m := id.GetBucket()
	return BucketID{Bucket: m[ir.BucketKeyBucket], Consumer: m[ir.BucketKeyConsumer]}
}
