package envoymod

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
)

// The contract identifier: which version of this package's JSON both the
// control plane and the module were built from. Both binaries compile it
// from this file, and the module refuses a filter or per-route
// configuration whose Contract is not its own (empty included): Envoy
// then rejects the resource (a NACK) and keeps serving the last one it
// accepted, so a module and a control plane from different Tollgate
// versions (a rolling upgrade) fail safe instead of the module silently
// ignoring a field it does not know (encoding/json's leniency).

// ContractRevision is the part of ContractID a developer sets by hand.
// Bump it when the meaning of the configuration changes while its JSON
// shape does not (the shape's own changes are caught by ContractID):
//   - a field's values are read differently (a unit, a default, what 0 or
//     "" means, an enum's new value);
//   - the module must act on something the shape cannot show: a new value
//     of RouteConfig.Extensions, a new request or metadata the module must
//     handle, a header it must now write (the shared constants' names and
//     values, contract.Key* among them, are in the identifier already:
//     vocabulary);
//   - a type of the configuration gets its own MarshalJSON/UnmarshalJSON
//     or MarshalText/UnmarshalText, or such a method's format changes (the
//     shape then shows only the type's name).
//
// Never lower it; when unsure, bump it: the only cost is that a module
// and a control plane of the two builds refuse each other, which they
// must be deployed together to avoid anyway.
const ContractRevision = 2

// ContractID returns the contract identifier of this build: "r" +
// ContractRevision + "-" + 16 hex digits of a SHA-256 over the JSON shape
// of FilterConfig and RouteConfig (shapeOf) and the names and values of
// the constants both sides share (vocabulary). It is computed once.
func ContractID() string { return contractID() }

// contractID caches ContractID (a read-only function value, not state).
var contractID = sync.OnceValue(func() string {
	return contractOf(ContractRevision, vocabulary(), reflect.TypeFor[FilterConfig](), reflect.TypeFor[RouteConfig](),
		reflect.TypeFor[KeyRecord]())
})

// vocabulary is every exported constant of this package and of
// extauthz/contract as "name=value", the names and bounds the translator
// writes and the module reads besides the configuration's shape (the
// context-extension keys, the marker, the metadata namespace, the limits'
// bounds), and as "ir.name=value" the policy/ir constants the module's
// code compares with what the control plane writes or signs (the method
// names of contract.KeyMethods' values, the signed keys' issuer): a
// changed value changes ContractID. TestVocabularyIsComplete fails when a
// constant of either package is missing here, TestVocabularyCoversIRConstants
// when an ir constant the module's code names is (but the RLQS protocol's),
// so a new one joins the identifier too.
func vocabulary() []string {
	return []string{
		"ClusterName=" + contract.ClusterName, "KeyRoute=" + contract.KeyRoute, "KeyMethods=" + contract.KeyMethods,
		"KeyRoles=" + contract.KeyRoles, "KeyScopes=" + contract.KeyScopes,
		"KeyForwardCredentials=" + contract.KeyForwardCredentials, "KeyRateLimit=" + contract.KeyRateLimit,
		"RateLimitExact=" + contract.RateLimitExact, "MetadataRateLimit=" + contract.MetadataRateLimit,
		"HeaderClientIP=" + contract.HeaderClientIP, "ListSeparator=" + contract.ListSeparator,
		fmt.Sprint("MaxSignedKeyLen=", contract.MaxSignedKeyLen), fmt.Sprint("KeyIDLen=", contract.KeyIDLen),
		fmt.Sprint("MaxConsumerLen=", contract.MaxConsumerLen),
		"FilterName=" + FilterName, "LibraryName=" + LibraryName, "NativeMarkerKey=" + NativeMarkerKey,
		"ChargeMetadataNamespace=" + ChargeMetadataNamespace, "MetadataKeyRecord=" + MetadataKeyRecord,
		fmt.Sprint("MaxKeyRecordLen=", MaxKeyRecordLen),
		fmt.Sprint("DefaultCacheSize=", DefaultCacheSize), fmt.Sprint("DefaultCacheMaxTTL=", int64(DefaultCacheMaxTTL)),
		fmt.Sprint("DefaultMaxParked=", DefaultMaxParked), fmt.Sprint("DefaultReportInterval=", int64(DefaultReportInterval)),
		fmt.Sprint("MaxBucketLimits=", MaxBucketLimits), fmt.Sprint("MaxDenyHeaders=", MaxDenyHeaders),
		fmt.Sprint("MaxTiers=", MaxTiers),
		fmt.Sprint("ContractRevision=", ContractRevision),
		"ir.MethodJWT=" + ir.MethodJWT, "ir.MethodAPIKey=" + ir.MethodAPIKey, "ir.MethodOAuth2=" + ir.MethodOAuth2,
		"ir.SignedKeyIssuer=" + ir.SignedKeyIssuer,
	}
}

// contractOf is the contract identifier of revision, the shared constants
// vocab and the JSON shape of types, in order.
func contractOf(revision int, vocab []string, types ...reflect.Type) string {
	h := sha256.New()
	for _, v := range vocab {
		fmt.Fprintf(h, "%s\n", v)
	}
	for _, t := range types {
		fmt.Fprintf(h, "%s\n", shapeOf(t, nil))
	}
	return fmt.Sprintf("r%d-%s", revision, hex.EncodeToString(h.Sum(nil)[:8]))
}

// CheckContract returns an error naming both identifiers and the fix when
// got, a configuration's Contract, is not ContractID (nil when it is).
func CheckContract(got string) error {
	if want := ContractID(); got != want {
		if got == "" {
			got = "none"
		}
		return fmt.Errorf("envoymod: configuration contract %s, this module's is %s: the module and the control plane "+
			"are from different Tollgate versions; deploy the module and the control plane (tollgate serve) from the "+
			"same Tollgate version", got, want)
	}
	return nil
}

// shapeOf is a deterministic text of t's JSON shape: kinds, and for a
// struct its encoded fields sorted by JSON name, each with its name, its
// tag options (omitempty, string) and its type's shape, so that adding,
// removing, renaming (in JSON) or retyping a field anywhere below t
// changes it; reordering fields or renaming a Go type does not. A named
// type that is not a struct shows its name (time.Duration is a count of
// nanoseconds, not any int64); a type with its own JSON or text
// (un)marshaling shows only its name (ContractRevision covers its format);
// an interface shows "any". open holds the structs being expanded, so a
// recursive type shows a reference to its name.
func shapeOf(t reflect.Type, open []reflect.Type) string {
	if custom(t) {
		return "custom(" + t.String() + ")"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + shapeOf(t.Elem(), open)
	case reflect.Slice:
		return "[]" + shapeOf(t.Elem(), open)
	case reflect.Array:
		return fmt.Sprintf("[%d]%s", t.Len(), shapeOf(t.Elem(), open))
	case reflect.Map:
		return "map[" + shapeOf(t.Key(), open) + "]" + shapeOf(t.Elem(), open)
	case reflect.Interface:
		return "any"
	case reflect.Struct:
		if slices.Contains(open, t) {
			return "ref(" + t.String() + ")"
		}
		return structShape(t, append(open, t))
	}
	if t.Name() != "" && t.PkgPath() != "" {
		return t.Kind().String() + "(" + t.String() + ")"
	}
	return t.Kind().String()
}

// custom reports whether encoding/json encodes or decodes t (or *t) with
// t's own methods.
func custom(t reflect.Type) bool {
	for _, i := range []reflect.Type{reflect.TypeFor[json.Marshaler](), reflect.TypeFor[json.Unmarshaler](),
		reflect.TypeFor[encoding.TextMarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()} {
		if t.Implements(i) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(i)) {
			return true
		}
	}
	return false
}

// structShape is shapeOf a struct t: its fields as encoding/json sees
// them (exported or embedded, "-" left out), sorted by JSON name; an
// embedded struct without a tag (whose fields encoding/json promotes)
// appears as "embed:" and its shape.
func structShape(t reflect.Type, open []reflect.Type) string {
	var fields []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && indirect(f.Type).Kind() == reflect.Struct {
			fields = append(fields, "embed:"+shapeOf(f.Type, open))
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields = append(fields, fmt.Sprintf("%q,%s:%s", name, opts, shapeOf(f.Type, open)))
	}
	slices.Sort(fields)
	return "{" + strings.Join(fields, ";") + "}"
}

// indirect is t, or its element when t is a pointer.
func indirect(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		return t.Elem()
	}
	return t
}
