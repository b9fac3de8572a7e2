package envoy

import (
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/proto"
)

func TestExtProc(t *testing.T) {
	tests := []struct {
		name        string
		opts        ExtProcOptions
		wantTimeout time.Duration
		wantStatus  int
	}{
		{"defaults", ExtProcOptions{Cluster: "ep", MutableHeaders: []string{"content-type"}}, DefaultExtProcMessageTimeout, DefaultExtProcStatusOnError},
		{"explicit", ExtProcOptions{Cluster: "ep", MessageTimeout: 300 * time.Millisecond, StatusOnError: 502}, 300 * time.Millisecond, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ExtProcFilter(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(f); err != nil {
				t.Fatal(err)
			}
			ep := &extprocv3.ExternalProcessor{}
			if err := f.GetTypedConfig().UnmarshalTo(ep); err != nil {
				t.Fatal(err)
			}
			switch {
			case f.GetName() != ExtProcName || !proto.Equal(ep, ExtProc(tt.opts)):
				t.Fatalf("filter %s does not carry ExtProc(opts)", f.GetName())
			case ep.GetFailureModeAllow():
				t.Error("fails open, want closed")
			case ep.GetMessageTimeout().AsDuration() != tt.wantTimeout || int(ep.GetStatusOnError().GetCode()) != tt.wantStatus:
				t.Errorf("timeout %v status %v, want %v %d", ep.GetMessageTimeout().AsDuration(), ep.GetStatusOnError().GetCode(), tt.wantTimeout, tt.wantStatus)
			case !proto.Equal(ep.GetProcessingMode(), ExtProcMode(false, false)):
				t.Errorf("filter-level mode %v, want everything skipped", ep.GetProcessingMode())
			}
		})
	}
}

func TestExtProcMode(t *testing.T) {
	skip, send := extprocv3.ProcessingMode_SKIP, extprocv3.ProcessingMode_SEND
	none, buffered := extprocv3.ProcessingMode_NONE, extprocv3.ProcessingMode_BUFFERED
	tests := []struct {
		request, response bool
		want              *extprocv3.ProcessingMode
	}{
		{false, false, &extprocv3.ProcessingMode{RequestHeaderMode: skip, ResponseHeaderMode: skip, RequestBodyMode: none, ResponseBodyMode: none, RequestTrailerMode: skip, ResponseTrailerMode: skip}},
		{true, false, &extprocv3.ProcessingMode{RequestHeaderMode: send, ResponseHeaderMode: skip, RequestBodyMode: buffered, ResponseBodyMode: none, RequestTrailerMode: skip, ResponseTrailerMode: skip}},
		{false, true, &extprocv3.ProcessingMode{RequestHeaderMode: skip, ResponseHeaderMode: send, RequestBodyMode: none, ResponseBodyMode: buffered, RequestTrailerMode: skip, ResponseTrailerMode: skip}},
		{true, true, &extprocv3.ProcessingMode{RequestHeaderMode: send, ResponseHeaderMode: send, RequestBodyMode: buffered, ResponseBodyMode: buffered, RequestTrailerMode: skip, ResponseTrailerMode: skip}},
	}
	for _, tt := range tests {
		if got := ExtProcMode(tt.request, tt.response); !proto.Equal(got, tt.want) {
			t.Errorf("ExtProcMode(%v, %v) = %v, want %v", tt.request, tt.response, got, tt.want)
		}
	}
}

func TestExtProcPerRoute(t *testing.T) {
	for _, pr := range []*extprocv3.ExtProcPerRoute{
		ExtProcPerRouteDisabled(),
		ExtProcPerRouteOverrides(ExtProcMode(false, true), "x-k", "v", true),
	} {
		if err := Validate(pr); err != nil {
			t.Errorf("%v: %v", pr, err)
		}
	}
	o := ExtProcPerRouteOverrides(ExtProcMode(true, false), "x-k", "v", true).GetOverrides()
	if md := o.GetGrpcInitialMetadata(); len(md) != 1 || md[0].GetKey() != "x-k" || md[0].GetValue() != "v" || !o.GetFailureModeAllow().GetValue() {
		t.Errorf("overrides %v", o)
	}
}
