package spare

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func waitHave(t *testing.T, s *Spare[int]) {
	t.Helper()
	for i := 0; i < 200; i++ {
		s.mu.Lock()
		ok := s.have && !s.filling
		s.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no item made")
}

func TestSpare(t *testing.T) {
	var made, dropped atomic.Int32
	s := New(func() (int, error) { return int(made.Add(1)), nil }, func(int) { dropped.Add(1) })
	if _, ok := s.Take(); ok {
		t.Fatal("an empty spare gave an item")
	}
	s.Refill()
	waitHave(t, s)
	s.Refill() // one is there: nothing made
	if it, ok := s.Take(); !ok || it != 1 {
		t.Fatalf("Take = %d, %v", it, ok)
	}
	if made.Load() != 1 {
		t.Fatalf("made %d items for one", made.Load())
	}
	s.Refill()
	waitHave(t, s)
	s.Close()
	if dropped.Load() != 1 {
		t.Fatalf("Close dropped %d items", dropped.Load())
	}
	s.Refill()
	time.Sleep(20 * time.Millisecond)
	if made.Load() != 2 {
		t.Fatal("a closed spare made another item")
	}
}

func TestSpareMakeFails(t *testing.T) {
	s := New(func() (int, error) { return 0, errors.New("no") }, func(int) {})
	s.Refill()
	time.Sleep(20 * time.Millisecond)
	if _, ok := s.Take(); ok {
		t.Fatal("a failed make gave an item")
	}
}
