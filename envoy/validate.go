package envoy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
)

// anyFullName is the message type whose contents PGV does not validate.
const anyFullName protoreflect.FullName = "google.protobuf.Any"

// Validate checks m against its protoc-gen-validate rules (ValidateAll) and
// does the same for the contents of every google.protobuf.Any reachable in
// m, recursively: the generated validators stop at an Any, but Envoy unpacks
// and checks it. Any types are resolved in protoregistry.GlobalTypes, so
// every extension type m may carry must be linked into the program; an
// unknown type is an error.
//
// The error names the path to the failing message, for example
// "filter_chains[0].filters[0].typed_config<...HttpConnectionManager>: ...".
//
// To validate many messages, use one Validator: it remembers which fields
// of which message types can lead to an Any.
func Validate(m proto.Message) error {
	return NewValidator().Validate(m)
}

// Validator validates messages like Validate, remembering across calls which
// fields of each message type can lead to an Any, so that it only walks
// those. It is not safe for concurrent use.
type Validator struct {
	types *AnyTypes
	path  fieldPath
}

// NewValidator returns a Validator that knows no types yet.
func NewValidator() *Validator {
	return NewValidatorWith(&AnyTypes{})
}

// NewValidatorWith returns a Validator that learns types into types, and
// knows those that other Validators sharing it learnt.
func NewValidatorWith(types *AnyTypes) *Validator {
	return &Validator{types: types}
}

// Validate is the package-level Validate.
func (v *Validator) Validate(m proto.Message) error {
	v.path.elems = v.path.elems[:0]
	return v.validateTree(m)
}

// validateTree runs PGV on m, then walks m for Any fields.
func (v *Validator) validateTree(m proto.Message) error {
	if err := pgv(m); err != nil {
		return v.path.errorf("%w", err)
	}
	return v.walkAnys(m.ProtoReflect())
}

// pgv runs the generated validator of m, if it has one.
func pgv(m proto.Message) error {
	switch v := m.(type) {
	case interface{ ValidateAll() error }:
		return v.ValidateAll()
	case interface{ Validate() error }:
		return v.Validate()
	}
	return nil
}

// walkAnys visits, in field-number order (map entries in key order), every
// set field of m that can lead to an Any, unpacking and validating each Any.
func (v *Validator) walkAnys(m protoreflect.Message) error {
	for _, fd := range v.types.fieldsToAny(m.Descriptor()) {
		if !m.Has(fd) {
			continue
		}
		if err := v.walkField(m.Get(fd), fd); err != nil {
			return err
		}
	}
	return nil
}

// walkField visits the message(s) held by field fd with value val.
func (v *Validator) walkField(val protoreflect.Value, fd protoreflect.FieldDescriptor) error {
	name := fd.TextName()
	switch {
	case fd.IsList():
		list := val.List()
		for i := range list.Len() {
			v.path.push(pathElem{name: name, index: i})
			if err := v.walkMessage(list.Get(i).Message()); err != nil {
				return err
			}
			v.path.pop()
		}
	case fd.IsMap():
		for _, k := range mapKeys(val.Map()) {
			v.path.push(pathElem{name: name, index: -1, key: k.String()})
			if err := v.walkMessage(val.Map().Get(k).Message()); err != nil {
				return err
			}
			v.path.pop()
		}
	default:
		v.path.push(pathElem{name: name, index: -1})
		if err := v.walkMessage(val.Message()); err != nil {
			return err
		}
		v.path.pop()
	}
	return nil
}

// walkMessage unpacks and validates m if it is an Any, else walks into it.
func (v *Validator) walkMessage(m protoreflect.Message) error {
	if m.Descriptor().FullName() != anyFullName {
		return v.walkAnys(m)
	}
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		return v.path.errorf("Any of unexpected Go type %T", m.Interface())
	}
	inner, err := anypb.UnmarshalNew(a, proto.UnmarshalOptions{Resolver: protoregistry.GlobalTypes})
	if errors.Is(err, protoregistry.NotFound) {
		return v.path.errorf("unknown type %s (not linked into this program)", a.GetTypeUrl())
	}
	if err != nil {
		return v.path.errorf("unpack %s: %w", a.GetTypeUrl(), err)
	}
	v.path.push(pathElem{anyType: string(inner.ProtoReflect().Descriptor().FullName()), index: -1})
	defer v.path.pop()
	return v.validateTree(inner)
}

// mapKeys returns the keys of m in a stable order.
func mapKeys(m protoreflect.Map) []protoreflect.MapKey {
	keys := make([]protoreflect.MapKey, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.SortFunc(keys, func(a, b protoreflect.MapKey) int {
		return cmp.Compare(a.String(), b.String())
	})
	return keys
}

// fieldPath is the path from the validated root to the current message. It
// is only formatted when an error is reported.
type fieldPath struct{ elems []pathElem }

// pathElem is a field (name, with index for a list element or key for a map
// entry) or the unpacked type of an Any (anyType).
type pathElem struct {
	name    string
	index   int
	key     string
	anyType string
}

func (p *fieldPath) push(e pathElem) { p.elems = append(p.elems, e) }
func (p *fieldPath) pop()            { p.elems = p.elems[:len(p.elems)-1] }

// String formats the path, for example
// filter_chains[0].filters[0].typed_config<envoy...HttpConnectionManager>.
func (p *fieldPath) String() string {
	var b strings.Builder
	for _, e := range p.elems {
		switch {
		case e.anyType != "":
			b.WriteString("<" + e.anyType + ">")
			continue
		case b.Len() > 0:
			b.WriteByte('.')
		}
		b.WriteString(e.name)
		switch {
		case e.index >= 0:
			b.WriteString("[" + strconv.Itoa(e.index) + "]")
		case e.key != "":
			b.WriteString("[" + strconv.Quote(e.key) + "]")
		}
	}
	return b.String()
}

// errorf formats an error prefixed with the path, if any.
func (p *fieldPath) errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if len(p.elems) == 0 {
		return err
	}
	return fmt.Errorf("%s: %w", p.String(), err)
}
