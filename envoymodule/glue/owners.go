package glue

import "sync"

// Owners tracks holders of keys K (the module's RLQS clients), each with
// its value V (the client's Store), and which value owns a shared
// resource (the process-wide bucket table): the value of the key taken
// last that is still held. Keys and their values are remembered after
// their last holder goes (a key taken again gets its first value back:
// the registry hands out the same client, which keeps its first Store),
// so memory grows with the number of distinct keys ever taken, which is
// the number of quota server addresses a process has seen. Safe for
// concurrent use; the zero value is ready.
type Owners[K, V comparable] struct {
	mu     sync.Mutex
	values map[K]V
	refs   map[K]int
	owner  K
	owned  bool
}

// Take counts one more holder of k (v is k's value unless k has one
// already), makes k's value the owner, and returns k's value.
func (o *Owners[K, V]) Take(k K, v V) V {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.values == nil {
		o.values, o.refs = map[K]V{}, map[K]int{}
	}
	if old, ok := o.values[k]; ok {
		v = old
	} else {
		o.values[k] = v
	}
	o.refs[k]++
	o.owner, o.owned = k, true
	return v
}

// Give counts one holder of k less. When k's last holder goes and k
// owned, another held key (any) owns, or none.
func (o *Owners[K, V]) Give(k K) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refs[k] == 0 {
		return
	}
	if o.refs[k]--; o.refs[k] > 0 || !o.owned || o.owner != k {
		return
	}
	o.owned = false
	for other, n := range o.refs {
		if n > 0 {
			o.owner, o.owned = other, true
			return
		}
	}
}

// Owns reports whether v is the owner's value.
func (o *Owners[K, V]) Owns(v V) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.owned && o.values[o.owner] == v
}
