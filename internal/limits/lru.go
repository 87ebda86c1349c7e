package limits

// lru is a fixed-capacity map from a 64-bit key to a V that evicts the
// least recently used entry when full. Its nodes live in one slice that
// grows to the capacity and is then reused, so its memory is bounded by
// the capacity whatever keys an attacker chooses, and an insert into a
// full table allocates nothing. It is not safe for concurrent use.
type lru[V any] struct {
	index map[uint64]int32
	nodes []lruNode[V]
	head  int32 // most recently used; -1 if empty
	tail  int32 // least recently used; -1 if empty
	cap   int
}

type lruNode[V any] struct {
	key        uint64
	prev, next int32
	free       bool // removed: not indexed, waiting at the back for reuse
	v          V
}

func newLRU[V any](capacity int) *lru[V] {
	return &lru[V]{index: make(map[uint64]int32, capacity), head: -1, tail: -1, cap: capacity}
}

// get returns the value of key, or nil, without changing its recency:
// reads on the hot path stay cheap.
func (l *lru[V]) get(key uint64) *V {
	i, ok := l.index[key]
	if !ok {
		return nil
	}
	return &l.nodes[i].v
}

// put returns the value of key, made most recently used, creating a zero
// one if there is none. When the table is full, the least recently used
// entry is evicted first and, if evicted is not nil, its key handed to it.
func (l *lru[V]) put(key uint64, evicted func(key uint64)) *V {
	if i, ok := l.index[key]; ok {
		l.moveToFront(i)
		return &l.nodes[i].v
	}
	var i int32
	switch {
	case l.tail >= 0 && l.nodes[l.tail].free: // removed nodes wait at the back
		i = l.tail
		l.unlink(i)
	case len(l.nodes) < l.cap:
		l.nodes = append(l.nodes, lruNode[V]{})
		i = int32(len(l.nodes) - 1)
	default:
		i = l.tail
		old := &l.nodes[i]
		if evicted != nil {
			evicted(old.key)
		}
		delete(l.index, old.key)
		l.unlink(i)
	}
	n := &l.nodes[i]
	var zero V
	n.key, n.v, n.free = key, zero, false
	l.index[key] = i
	l.pushFront(i)
	return &n.v
}

// remove deletes key, if present. Its node goes to the back, to be reused
// first.
func (l *lru[V]) remove(key uint64) {
	i, ok := l.index[key]
	if !ok {
		return
	}
	delete(l.index, key)
	var zero V
	l.nodes[i].v, l.nodes[i].free = zero, true
	// Only removed nodes are ever pushed to the back, so they are the
	// list's tail end, where put reuses them first.
	l.unlink(i)
	l.pushBack(i)
}

// len returns the number of entries.
func (l *lru[V]) len() int { return len(l.index) }

func (l *lru[V]) unlink(i int32) {
	n := &l.nodes[i]
	if n.prev >= 0 {
		l.nodes[n.prev].next = n.next
	} else {
		l.head = n.next
	}
	if n.next >= 0 {
		l.nodes[n.next].prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = -1, -1
}

func (l *lru[V]) pushFront(i int32) {
	n := &l.nodes[i]
	n.prev, n.next = -1, l.head
	if l.head >= 0 {
		l.nodes[l.head].prev = i
	}
	l.head = i
	if l.tail < 0 {
		l.tail = i
	}
}

func (l *lru[V]) pushBack(i int32) {
	n := &l.nodes[i]
	n.prev, n.next = l.tail, -1
	if l.tail >= 0 {
		l.nodes[l.tail].next = i
	}
	l.tail = i
	if l.head < 0 {
		l.head = i
	}
}

func (l *lru[V]) moveToFront(i int32) {
	if l.head == i {
		return
	}
	l.unlink(i)
	l.pushFront(i)
}
