package controlplane

import (
	"bytes"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// equalShared reports whether a and b are equal as proto.Equal decides,
// except that a message is equal to itself without being walked: two
// versions of a route configuration share their unchanged routes
// (translator.TranslateValidated), and walking 10,000 shared routes
// reflectively cost more than the rest of the diff. (The one difference:
// proto.Equal finds a message holding a NaN unequal even to itself; the
// translator sets no NaN.)
func equalShared(a, b protoreflect.Message) bool {
	switch {
	case a.Interface() == b.Interface():
		return true
	case a.IsValid() != b.IsValid():
		return false
	case a.Descriptor().FullName() != b.Descriptor().FullName():
		return false
	}
	na, equal := 0, true
	a.Range(func(fd protoreflect.FieldDescriptor, va protoreflect.Value) bool {
		na++
		equal = b.Has(fd) && equalValues(fd, va, b.Get(fd))
		return equal
	})
	if !equal {
		return false
	}
	nb := 0
	b.Range(func(protoreflect.FieldDescriptor, protoreflect.Value) bool { nb++; return true })
	return na == nb && bytes.Equal(a.GetUnknown(), b.GetUnknown())
}

// equalValues compares two values of field fd like equalShared: messages,
// and lists of messages element by element, with equalShared; the rest
// (scalars, maps) with protoreflect.Value.Equal, which proto.Equal uses.
func equalValues(fd protoreflect.FieldDescriptor, a, b protoreflect.Value) bool {
	switch {
	case fd.IsMap() || fd.Message() == nil:
		return a.Equal(b)
	case fd.IsList():
		la, lb := a.List(), b.List()
		if la.Len() != lb.Len() {
			return false
		}
		for i := range la.Len() {
			if !equalShared(la.Get(i).Message(), lb.Get(i).Message()) {
				return false
			}
		}
		return true
	default:
		return equalShared(a.Message(), b.Message())
	}
}
