package main

// This file stands in for package envoymodule/quotaclient (the RLQS client,
// written in parallel) until it lands: the types behind exactly its names,
// and a registry whose clients report nothing. Switching is replacing this
// file by aliases (type BucketID = quotaclient.BucketID, ...,
// type quotaClient = quotaclient.Client, type quotaRegistry =
// quotaclient.Registry, newQuotaRegistry = quotaclient.NewRegistry(0)).
// TODO(modrlqs): switch once envoymodule/quotaclient is on main.

import (
	"log/slog"
	"sync"
	"time"

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// BucketID names one bucket: its ir.BucketKeyBucket and consumer values.
type BucketID struct{ Bucket, Consumer string }

// Usage is one bucket's requests since the previous Drain.
type Usage struct {
	ID              BucketID
	Allowed, Denied uint64
}

// Kind is an assignment's strategy (limit.h TG_ASSIGN_* share its values).
type Kind int

// Assignment strategies.
const (
	AllowAll Kind = iota
	DenyAll
	TokenBucket
)

// Assignment is one quota assignment of the server.
type Assignment struct {
	ID                       BucketID
	Kind                     Kind
	MaxTokens, TokensPerFill uint64
	FillInterval, TTL        time.Duration
}

// Store is the bucket table as the client sees it (limits.go).
type Store interface {
	Drain() []Usage
	Assign(a Assignment)
	Abandon(id BucketID)
}

// quotaClient stands in for quotaclient.Client: it reports nothing.
type quotaClient struct{}

// NewBucket would report the new bucket at once.
func (*quotaClient) NewBucket() {}

// quotaRegistry stands in for quotaclient.Registry.
type quotaRegistry struct {
	once sync.Once
}

func newQuotaRegistry() *quotaRegistry { return &quotaRegistry{} }

// Get returns a client that reports nothing (logged once): the local
// limits alone apply.
func (r *quotaRegistry) Get(cfg envoymod.Quota, _ Store, log *slog.Logger) *quotaClient {
	r.once.Do(func() {
		log.Warn("no RLQS client in this build: the module's local limits alone apply", "address", cfg.Address)
	})
	return &quotaClient{}
}

// Release gives back a Get.
func (r *quotaRegistry) Release(*quotaClient) {}
