package plugins

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// mainThreadTID is the thread fn ran on when OnThrowawayThread was called
// from the main thread itself (TestMain locks the main goroutine to it).
var mainThreadTID int

func TestMain(m *testing.M) {
	runtime.LockOSThread()
	if unix.Gettid() != unix.Getpid() {
		panic("TestMain is not on the main thread")
	}
	_ = OnThrowawayThread(func() error { mainThreadTID = unix.Gettid(); return nil })
	runtime.UnlockOSThread()
	os.Exit(m.Run())
}

func TestOnThrowawayThreadNeverMain(t *testing.T) {
	if mainThreadTID == unix.Getpid() {
		t.Fatal("called from the main thread, fn ran on it")
	}
	for i := 0; i < 50; i++ {
		var tid int
		if err := OnThrowawayThread(func() error { tid = unix.Gettid(); return nil }); err != nil {
			t.Fatal(err)
		}
		if tid == unix.Getpid() {
			t.Fatalf("call %d ran on the main thread", i)
		}
	}
}
