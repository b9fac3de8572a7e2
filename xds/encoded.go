package xds

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/runtime/protoiface"
)

// encodedResource is a resource that marshals to the deterministic
// encoding hashed for its version, without encoding it again.
//
// go-control-plane's delta server marshals every resource it sends
// (cache.MarshalResource: proto.MarshalOptions{Deterministic: true}) when
// it builds the response, after SetSnapshot, on the way to the proxy; its
// cache builds a fresh cachedResource per response, so nothing of its
// public API takes bytes already encoded. proto.Marshal, though, asks a
// message for its own marshal method (protoreflect.Message.ProtoMethods,
// as any message implementation, such as dynamicpb, provides): an
// encodedResource answers with the bytes kept. Everything else (the name,
// reflection: Range, Get, protojson) is the wrapped message's, so the
// bytes sent are exactly those cache.MarshalResource gives for the
// wrapped message, which TestEncodedResourceMarshalsAsTheMessage checks.
type encodedResource struct {
	types.Resource
	enc     []byte
	reflect encodedReflect
	methods protoiface.Methods
}

// encoded returns r marshalling to enc, which must be r's deterministic
// encoding and is never modified (one allocation: the methods are plain
// functions that find the encoding through their input's message).
func encoded(r types.Resource, enc []byte) *encodedResource {
	e := &encodedResource{Resource: r, enc: enc}
	e.reflect = encodedReflect{Message: r.ProtoReflect(), e: e}
	e.methods = protoiface.Methods{
		Flags:            protoiface.SupportMarshalDeterministic,
		Size:             sizeEncoded,
		Marshal:          marshalEncoded,
		CheckInitialized: checkEncoded,
	}
	return e
}

// sizeEncoded is the size of an encodedResource's encoding.
func sizeEncoded(in protoiface.SizeInput) protoiface.SizeOutput {
	return protoiface.SizeOutput{Size: len(in.Message.(*encodedReflect).e.enc)}
}

// marshalEncoded appends an encodedResource's encoding to in.Buf.
func marshalEncoded(in protoiface.MarshalInput) (protoiface.MarshalOutput, error) {
	return protoiface.MarshalOutput{Buf: append(in.Buf, in.Message.(*encodedReflect).e.enc...)}, nil
}

// checkEncoded checks the wrapped message's required fields.
func checkEncoded(in protoiface.CheckInitializedInput) (protoiface.CheckInitializedOutput, error) {
	return protoiface.CheckInitializedOutput{}, proto.CheckInitialized(in.Message.(*encodedReflect).e.Resource)
}

// ProtoReflect is the wrapped message's reflection, with e's marshal.
func (e *encodedResource) ProtoReflect() protoreflect.Message { return &e.reflect }

// GetName is the wrapped resource's name (cache.GetResourceName).
func (e *encodedResource) GetName() string { return cache.GetResourceName(e.Resource) }

// encodedReflect is the reflection of an encodedResource.
type encodedReflect struct {
	protoreflect.Message
	e *encodedResource
}

// ProtoMethods returns the methods that marshal to the kept encoding.
func (r *encodedReflect) ProtoMethods() *protoiface.Methods { return &r.e.methods }

// Interface returns the encodedResource.
func (r *encodedReflect) Interface() protoreflect.ProtoMessage { return r.e }

// encodedAll returns rs, each marshalling to its encoding in enc
// (index-aligned; a nil encoding leaves its resource as it is).
func encodedAll(rs []types.Resource, enc [][]byte) []types.Resource {
	if len(enc) != len(rs) {
		return rs
	}
	out := make([]types.Resource, len(rs))
	for i, r := range rs {
		out[i] = r
		if enc[i] != nil {
			out[i] = encoded(r, enc[i])
		}
	}
	return out
}
