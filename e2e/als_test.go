package e2e

import (
	"io"
	"net"
	"sync"
	"testing"

	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/grpc"
)

// alsReceiver is an in-test gRPC AccessLogService: it keeps every HTTP
// access-log entry Envoy streams to it.
type alsReceiver struct {
	alsv3.UnimplementedAccessLogServiceServer
	addr    string
	mu      sync.Mutex
	entries []alsEntry
}

// alsEntry is one received entry, flattened.
type alsEntry struct {
	logName, route, path, userID string
	status                       uint32
}

func startALSReceiver(t *testing.T) *alsReceiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &alsReceiver{addr: l.Addr().String()}
	g := grpc.NewServer()
	alsv3.RegisterAccessLogServiceServer(g, r)
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	return r
}

// StreamAccessLogs records the entries of one stream until it ends. Only
// the first message of a stream carries the identifier.
func (r *alsReceiver) StreamAccessLogs(s alsv3.AccessLogService_StreamAccessLogsServer) error {
	logName := ""
	for {
		msg, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if id := msg.GetIdentifier(); id != nil {
			logName = id.GetLogName()
		}
		r.mu.Lock()
		for _, e := range msg.GetHttpLogs().GetLogEntry() {
			authz := e.GetCommonProperties().GetMetadata().GetFilterMetadata()["envoy.filters.http.ext_authz"]
			r.entries = append(r.entries, alsEntry{
				logName: logName, route: e.GetCommonProperties().GetRouteName(), path: e.GetRequest().GetPath(),
				userID: authz.GetFields()["user_id"].GetStringValue(), status: e.GetResponse().GetResponseCode().GetValue(),
			})
		}
		r.mu.Unlock()
	}
}

// find returns the entries for path.
func (r *alsReceiver) find(path string) []alsEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []alsEntry
	for _, e := range r.entries {
		if e.path == path {
			out = append(out, e)
		}
	}
	return out
}
