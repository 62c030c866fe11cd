// Package spare keeps one thing made in advance — a shim, an exec helper, a
// network namespace — so that making it is off the path of the request
// that needs it.
package spare

import "sync"

// Spare holds at most one item, made in the background by Refill.
type Spare[T any] struct {
	make func() (T, error)
	drop func(T)

	mu      sync.Mutex
	item    T
	have    bool
	filling bool
	closed  bool
}

// New returns an empty Spare whose items make makes and drop disposes of
// (an item made when one is already there, or after Close).
func New[T any](make func() (T, error), drop func(T)) *Spare[T] {
	return &Spare[T]{make: make, drop: drop}
}

// Take returns the item made in advance, if there is one.
func (s *Spare[T]) Take() (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.item, s.have
	var zero T
	s.item, s.have = zero, false
	return it, ok
}

// Refill makes the next item in the background, unless one is there or
// being made. Callers choose when: on two cores, making it during a
// request competes with the request.
func (s *Spare[T]) Refill() {
	s.mu.Lock()
	if s.have || s.filling || s.closed {
		s.mu.Unlock()
		return
	}
	s.filling = true
	s.mu.Unlock()
	go func() {
		it, err := s.make()
		s.mu.Lock()
		s.filling = false
		if err != nil {
			s.mu.Unlock()
			return
		}
		if s.have || s.closed {
			s.mu.Unlock()
			s.drop(it)
			return
		}
		s.item, s.have = it, true
		s.mu.Unlock()
	}()
}

// Close drops the item and makes no more.
func (s *Spare[T]) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if it, ok := s.Take(); ok {
		s.drop(it)
	}
}
