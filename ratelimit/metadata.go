package ratelimit

import "google.golang.org/protobuf/types/known/structpb"

// MetadataDecision is the key of the decision (Decision.kind) in the
// dynamic metadata Envoy's ratelimit filter publishes under its namespace
// envoy.filters.http.ratelimit; the access log reads it.
const MetadataDecision = "decision"

// metadata is the dynamic metadata of a response: the decision's kind.
func (d Decision) metadata() *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{MetadataDecision: structpb.NewStringValue(d.kind())}}
}
