package envoy

import (
	"maps"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// AnyTypes is what Validators learn about message types, the fields
// through which an Any can be reached, kept for the Validators that share
// it: a type's analysis depends only on its descriptor, so with one
// AnyTypes per process it is done once per type instead of once per
// validation (a push validates the same listener, route and cluster types
// each time). It is safe for concurrent use; the zero value is ready.
type AnyTypes struct {
	known atomic.Pointer[anyTypes] // never modified once stored
	mu    sync.Mutex               // serialises the analyses that add types
}

// fieldsToAny is anyTypes.fieldsToAny over every type analysed so far by
// the Validators sharing t.
func (t *AnyTypes) fieldsToAny(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if known := t.known.Load(); known != nil {
		if fields, ok := (*known)[md.FullName()]; ok {
			return fields
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	next := anyTypes{}
	if known := t.known.Load(); known != nil {
		next = maps.Clone(*known)
	}
	fields := next.fieldsToAny(md)
	t.known.Store(&next)
	return fields
}

// anyTypes remembers, per message type, the fields through which an Any can
// be reached. A type absent from the map has not been analysed yet.
type anyTypes map[protoreflect.FullName][]protoreflect.FieldDescriptor

// fieldsToAny returns the message, list-of-message and map-to-message fields
// of md whose type is Any or can contain an Any at any depth, in field
// order.
func (t anyTypes) fieldsToAny(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if fields, ok := t[md.FullName()]; ok {
		return fields
	}
	t.analyse(md)
	return t[md.FullName()]
}

// analyse records fieldsToAny for md and every message type reachable from
// it that is not known yet. It computes the set of types that lead to an
// Any exactly, cycles included: it collects the reachable types, then
// propagates "leads to Any" backwards from Any along the field edges.
func (t anyTypes) analyse(md protoreflect.MessageDescriptor) {
	reach := map[protoreflect.FullName]protoreflect.MessageDescriptor{}
	users := map[protoreflect.FullName][]protoreflect.FullName{} // type -> types with a field of it
	stack := []protoreflect.MessageDescriptor{md}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, seen := reach[cur.FullName()]; seen {
			continue
		}
		reach[cur.FullName()] = cur
		for _, sub := range messageFieldTypes(cur) {
			users[sub.FullName()] = append(users[sub.FullName()], cur.FullName())
			if _, known := t[sub.FullName()]; !known {
				stack = append(stack, sub)
			}
		}
	}
	leads := t.leadsToAny(reach, users)
	for name, d := range reach {
		var fields []protoreflect.FieldDescriptor
		for i := range d.Fields().Len() {
			fd := d.Fields().Get(i)
			if sub := fieldMessage(fd); sub != nil && (leads[sub.FullName()] || len(t[sub.FullName()]) > 0) {
				fields = append(fields, fd)
			}
		}
		t[name] = fields
	}
}

// leadsToAny returns the types in reach from which an Any can be reached:
// Any itself, types already known to lead to one, and their users.
func (t anyTypes) leadsToAny(reach map[protoreflect.FullName]protoreflect.MessageDescriptor,
	users map[protoreflect.FullName][]protoreflect.FullName,
) map[protoreflect.FullName]bool {
	leads := map[protoreflect.FullName]bool{}
	var queue []protoreflect.FullName
	mark := func(n protoreflect.FullName) {
		if !leads[n] {
			leads[n] = true
			queue = append(queue, n)
		}
	}
	for n := range users {
		if n == anyFullName || len(t[n]) > 0 {
			mark(n)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, u := range users[n] {
			if _, inReach := reach[u]; inReach {
				mark(u)
			}
		}
	}
	return leads
}

// messageFieldTypes returns the message types of md's fields (list elements
// and map values included).
func messageFieldTypes(md protoreflect.MessageDescriptor) []protoreflect.MessageDescriptor {
	var out []protoreflect.MessageDescriptor
	for i := range md.Fields().Len() {
		if sub := fieldMessage(md.Fields().Get(i)); sub != nil {
			out = append(out, sub)
		}
	}
	return out
}

// fieldMessage returns the message type held by fd (the value type for a
// map), or nil if it holds no message.
func fieldMessage(fd protoreflect.FieldDescriptor) protoreflect.MessageDescriptor {
	if fd.IsMap() {
		fd = fd.MapValue()
	}
	if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
		return nil
	}
	return fd.Message()
}
