package envoy

import (
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
)

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name        string
		opts        RateLimitOptions
		wantTimeout time.Duration
		wantStatus  typev3.StatusCode // 0: status_on_error unset
	}{
		{
			name:        "defaults, fail open",
			opts:        RateLimitOptions{Domain: "d", Cluster: "rls", StatusOnError: 500},
			wantTimeout: DefaultRateLimitTimeout,
		},
		{
			name:        "fail closed, default status",
			opts:        RateLimitOptions{Domain: "d", Cluster: "rls", Timeout: 50 * time.Millisecond, FailureModeDeny: true},
			wantTimeout: 50 * time.Millisecond, wantStatus: typev3.StatusCode_ServiceUnavailable,
		},
		{
			name:        "fail closed, explicit status",
			opts:        RateLimitOptions{Domain: "d", Cluster: "rls", Timeout: -time.Second, FailureModeDeny: true, StatusOnError: 500},
			wantTimeout: DefaultRateLimitTimeout, wantStatus: typev3.StatusCode_InternalServerError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := RateLimitFilter(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(f); err != nil {
				t.Fatal(err)
			}
			rl := &ratelimitv3.RateLimit{}
			if err := f.GetTypedConfig().UnmarshalTo(rl); err != nil {
				t.Fatal(err)
			}
			if f.GetName() != RateLimitName || !proto.Equal(rl, RateLimit(tt.opts)) {
				t.Fatalf("filter %q carries %v, want RateLimit(opts)", f.GetName(), rl)
			}
			svc := rl.GetRateLimitService()
			if rl.GetDomain() != "d" || rl.GetStage() != 0 || rl.GetRequestType() != "both" ||
				svc.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "rls" || svc.GetTransportApiVersion().String() != "V3" ||
				rl.GetFailureModeDeny() != tt.opts.FailureModeDeny ||
				rl.GetEnableXRatelimitHeaders() != ratelimitv3.RateLimit_OFF || rl.GetRateLimitedAsResourceExhausted() ||
				len(rl.GetRateLimits()) != 0 || rl.GetFailureModeDenyPercent() != nil {
				t.Errorf("ratelimit = %v", rl)
			}
			if rl.GetTimeout() == nil || rl.GetTimeout().AsDuration() != tt.wantTimeout {
				t.Errorf("timeout = %v, want %v (always set: 0 means none)", rl.GetTimeout(), tt.wantTimeout)
			}
			switch s := rl.GetStatusOnError(); {
			case tt.wantStatus == 0 && s != nil:
				t.Errorf("status_on_error = %v, want unset when failing open", s)
			case tt.wantStatus != 0 && s.GetCode() != tt.wantStatus:
				t.Errorf("status_on_error = %v, want %v", s, tt.wantStatus)
			}
		})
	}
	// The domain is required.
	if err := Validate(RateLimit(RateLimitOptions{Cluster: "rls"})); err == nil {
		t.Error("ratelimit without a domain passes validation")
	}
}

func TestRouteRateLimit(t *testing.T) {
	rl := RouteRateLimit(
		RateLimitActionGenericKey("route", "orders"),
		RateLimitActionMetadata("consumer", ExtAuthzName, "consumer"),
		RateLimitActionMetadata("nested", "ns", "a", "b"),
		RateLimitActionRemoteAddress(),
		RateLimitActionRequestHeaders("X-Client-Id", "header:x-client-id"),
	)
	r := Route("r", RouteMatchPrefix("/"), RouteToCluster("c", 0))
	r.GetRoute().RateLimits = []*routev3.RateLimit{rl}
	if err := Validate(r); err != nil {
		t.Fatal(err)
	}
	if rl.GetStage() != nil || rl.GetDisableKey() != "" || rl.GetLimit() != nil || rl.GetApplyOnStreamDone() || len(rl.GetActions()) != 5 {
		t.Fatalf("rate limit = %v, want only the 5 actions", rl)
	}
	a := rl.GetActions()
	if g := a[0].GetGenericKey(); g.GetDescriptorKey() != "route" || g.GetDescriptorValue() != "orders" || g.GetDefaultValue() != "" {
		t.Errorf("generic_key = %v", g)
	}
	wantMeta := &routev3.RateLimit_Action_MetaData{
		DescriptorKey: "nested",
		MetadataKey: &metadatav3.MetadataKey{Key: "ns", Path: []*metadatav3.MetadataKey_PathSegment{
			{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: "a"}},
			{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: "b"}},
		}},
		Source:       routev3.RateLimit_Action_MetaData_DYNAMIC,
		SkipIfAbsent: true,
	}
	if m := a[2].GetMetadata(); !proto.Equal(m, wantMeta) {
		t.Errorf("metadata = %v, want %v", m, wantMeta)
	}
	if m := a[1].GetMetadata(); m.GetMetadataKey().GetKey() != "envoy.filters.http.ext_authz" ||
		m.GetMetadataKey().GetPath()[0].GetKey() != "consumer" || !m.GetSkipIfAbsent() {
		t.Errorf("consumer metadata = %v", m)
	}
	if a[3].GetRemoteAddress() == nil {
		t.Errorf("action 3 = %v, want remote_address", a[3])
	}
	if h := a[4].GetRequestHeaders(); h.GetHeaderName() != "x-client-id" || h.GetDescriptorKey() != "header:x-client-id" || !h.GetSkipIfAbsent() {
		t.Errorf("request_headers = %v", h)
	}
	// Envoy rejects an empty header name or descriptor key; so does validation.
	for _, bad := range []*routev3.RateLimit{
		RouteRateLimit(RateLimitActionRequestHeaders("", "k")),
		RouteRateLimit(RateLimitActionRequestHeaders("h", "")),
		RouteRateLimit(RateLimitActionMetadata("", "ns", "k")),
	} {
		if err := Validate(bad); err == nil {
			t.Errorf("%v passes validation", bad)
		}
	}
}
