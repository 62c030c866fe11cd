package plugins

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// OnThrowawayThread runs fn on an OS thread of its own, locked to it, and
// ends that thread afterwards. fn may change the thread's namespaces
// (setns, unshare) without a way back, which is the rule for a plugin that
// is root in the rootless user namespace: it cannot re-enter the host's
// network namespace. Sockets opened and processes started by fn keep the
// namespace. The process's main thread is never used: Go keeps a main
// thread whose locked goroutine ended, which would leave it (and
// /proc/PID/ns) in fn's namespace.
func OnThrowawayThread(fn func() error) error {
	errc := make(chan error, 1)
	var run func()
	run = func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Hold the main thread until fn has run on another one.
			done := make(chan struct{})
			go func() { run(); close(done) }()
			<-done
			runtime.UnlockOSThread()
			return
		}
		errc <- fn() // never unlocked: the thread ends with the goroutine
	}
	go run()
	return <-errc
}
