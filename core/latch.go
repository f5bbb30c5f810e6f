package core

// latch is a one-way gate that goroutines wait on, opened once: its channel
// is made only when someone waits before it opens, so that a service nobody
// waits on allocates none. Open, it holds closedDone. It is read and
// changed under the owning Base's mu.
type latch struct {
	ch chan struct{} // nil while shut and nobody waits; closedDone once open
}

// isOpen reports whether the latch has opened. The owner's mu is held.
func (l *latch) isOpen() bool { return l.ch == closedDone }

// wait returns a channel closed once the latch is open (already closed if
// it is). The owner's mu is held.
func (l *latch) wait() <-chan struct{} {
	if l.ch == nil {
		l.ch = make(chan struct{})
	}
	return l.ch
}

// open opens the latch, releasing its waiters; it must be called once. The
// owner's mu is held.
func (l *latch) open() {
	if l.ch != nil {
		close(l.ch)
	}
	l.ch = closedDone
}

// dependent is a parent holding a *Base, and the name of the requirement
// under which it holds it.
type dependent struct {
	parent *Base
	name   string
}

// dependentsIndexed is how many dependents a service keeps in a plain list
// before it also indexes them, so that removing one stays constant time
// for a service shared by many parents.
const dependentsIndexed = 8

// dependents are the parents holding a *Base, in the order they acquired
// it: a list, and an index into it once the list is long. It is read and
// changed under the owning Base's mu.
type dependents struct {
	list  []dependent
	index map[*Base]int // position in list of each parent; nil while list is short
}

// add records parent, which holds the service as name. A parent holds a
// service at most once (a second requirement of it is rejected as a
// duplicate before it is acquired).
func (d *dependents) add(parent *Base, name string) {
	d.list = append(d.list, dependent{parent, name})
	switch {
	case d.index != nil:
		d.index[parent] = len(d.list) - 1
	case len(d.list) > dependentsIndexed:
		d.index = make(map[*Base]int, len(d.list))
		for i, e := range d.list {
			d.index[e.parent] = i
		}
	}
}

// remove forgets parent, if it is recorded; the order of the others may
// change.
func (d *dependents) remove(parent *Base) {
	i := -1
	if d.index != nil {
		if j, ok := d.index[parent]; ok {
			i = j
			delete(d.index, parent)
		}
	} else {
		for j, e := range d.list {
			if e.parent == parent {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return
	}
	last := len(d.list) - 1
	if i != last {
		d.list[i] = d.list[last]
		if d.index != nil {
			d.index[d.list[i].parent] = i
		}
	}
	d.list[last] = dependent{}
	d.list = d.list[:last]
}
