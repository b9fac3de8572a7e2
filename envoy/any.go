package envoy

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Any packs m into a google.protobuf.Any with a deterministic encoding, so
// equal messages always pack to equal bytes (maps included).
//
// It fails only if m cannot be marshalled, for example when a string field
// holds invalid UTF-8.
func Any(m proto.Message) (*anypb.Any, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, fmt.Errorf("pack %s into Any: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return a, nil
}

// MustAny is Any for messages whose content is fixed by this package (for
// example an empty Router, or constant protocol options). It panics if m
// cannot be marshalled, which for such messages is a programming error.
// Never call it with data that comes from a user or a policy.
func MustAny(m proto.Message) *anypb.Any {
	a, err := Any(m)
	if err != nil {
		panic("envoy: " + err.Error())
	}
	return a
}
