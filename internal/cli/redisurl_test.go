package cli

import (
	"testing"
)

func TestRedisOptions(t *testing.T) {
	tests := []struct {
		url       string
		wantAddrs int
		wantDB    int
		cluster   bool
		master    string
		wantErr   bool
	}{
		{url: "redis://127.0.0.1:6379/2", wantAddrs: 1, wantDB: 2},
		{url: "redis://:secret@127.0.0.1:6379", wantAddrs: 1},
		{url: "rediss://127.0.0.1:6380", wantAddrs: 1},
		{url: "redis+cluster://a:7000,b:7001,c:7002", wantAddrs: 3, cluster: true},
		{url: "redis+sentinel://s1:26379,s2:26379/mymaster", wantAddrs: 2, master: "mymaster"},
		{url: "redis+sentinel://s1:26379", wantErr: true},
		{url: "redis+ring://a:1", wantErr: true},
		{url: "http://a:1", wantErr: true},
		{url: "redis://a:1/x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			o, err := redisOptions(tt.url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if len(o.Addrs) != tt.wantAddrs || o.DB != tt.wantDB || o.IsClusterMode != tt.cluster || o.MasterName != tt.master || !o.ContextTimeoutEnabled {
				t.Fatalf("options = %+v", o)
			}
		})
	}
}
