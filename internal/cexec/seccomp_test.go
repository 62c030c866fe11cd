package cexec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// testProfile answers getppid with EACCES and allows what the probe of
// TestCapturedFilterLoads needs (write, exit_group, rt_sigreturn); the
// rest is refused with EPERM, or, above the last call it names, ENOSYS
// (libcontainer's stub: the default is an errno).
func testProfile(def configs.Action) *configs.Seccomp {
	eperm, eacces := uint(unix.EPERM), uint(unix.EACCES)
	prof := &configs.Seccomp{DefaultAction: def, Architectures: []string{"amd64"}}
	if def == configs.Errno {
		prof.DefaultErrnoRet = &eperm
		for _, name := range []string{"write", "exit_group", "rt_sigreturn"} {
			prof.Syscalls = append(prof.Syscalls, &configs.Syscall{Name: name, Action: configs.Allow})
		}
	}
	prof.Syscalls = append(prof.Syscalls, &configs.Syscall{Name: "getppid", Action: configs.Errno, ErrnoRet: &eacces})
	return prof
}

// TestCaptureFilter: the captured program is libseccomp's program of the
// profile (what libseccomp exports for the same rules) behind
// libcontainer's -ENOSYS stub, and nothing was loaded into the capturing
// process.
func TestCaptureFilter(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the profile names amd64")
	}
	allowing, err := CaptureFilter(testProfile(configs.Allow))
	if err != nil {
		t.Fatal(err)
	}
	// With an allowing default there is no stub: the program is
	// libseccomp's own.
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if err := f.SetNoNewPrivsBit(false); err != nil {
		t.Fatal(err)
	}
	nr, _ := libseccomp.GetSyscallFromName("getppid")
	if err := f.AddRule(nr, libseccomp.ActErrno.SetReturnCode(int16(unix.EACCES))); err != nil {
		t.Fatal(err)
	}
	out, err := os.CreateTemp(t.TempDir(), "bpf")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ExportBPF(out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	want, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if got := progBytes(allowing.Prog); !bytes.Equal(got, want) {
		t.Fatalf("captured program (%d instructions) differs from libseccomp's (%d)", len(got)/8, len(want)/8)
	}
	denying, err := CaptureFilter(testProfile(configs.Errno))
	if err != nil {
		t.Fatal(err)
	}
	if len(denying.Prog) <= len(allowing.Prog) {
		t.Fatalf("no -ENOSYS stub: %d instructions, %d without", len(denying.Prog), len(allowing.Prog))
	}
	if denying.Flags != allowing.Flags {
		t.Errorf("flags %d and %d", denying.Flags, allowing.Flags)
	}
	if st, _ := os.ReadFile("/proc/self/status"); !strings.Contains(string(st), "Seccomp:\t0") {
		t.Fatalf("the capture loaded a filter into the process:\n%s", st)
	}
	for _, task := range tasks(t) {
		if st, _ := os.ReadFile("/proc/self/task/" + task + "/status"); !strings.Contains(string(st), "Seccomp:\t0") {
			t.Fatalf("thread %s has a filter after the capture", task)
		}
	}
}

func tasks(t *testing.T) []string {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func progBytes(prog []unix.SockFilter) []byte {
	var b bytes.Buffer
	for _, ins := range prog {
		_ = binary.Write(&b, binary.NativeEndian, ins)
	}
	return b.Bytes()
}

// TestCapturedFilterLoads: a thread that loads the captured program gets
// the profile's answers: EACCES for getppid, EPERM for a call it does not
// name, and ENOSYS (the stub's) for one newer than every call it names.
func TestCapturedFilterLoads(t *testing.T) {
	if os.Getenv("CEXEC_TEST_LOAD") == "1" {
		loadAndProbe()
		return
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the profile names amd64")
	}
	f, err := CaptureFilter(testProfile(configs.Errno))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCapturedFilterLoads$")
	cmd.Env = append(os.Environ(), "CEXEC_TEST_LOAD=1")
	cmd.Stdin = bytes.NewReader(append(binary.NativeEndian.AppendUint32(nil, uint32(f.Flags)), progBytes(f.Prog)...))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(string(out), "getppid 13, getpid 1, call 1000 38") {
		t.Fatalf("answers under the filter: %s", out)
	}
}

// loadAndProbe runs in the child: it loads the program from stdin on a
// thread with every signal blocked, makes the three calls, writes their
// errnos and ends the process, all by raw system calls (nothing else is
// allowed there).
func loadAndProbe() {
	data, _ := io.ReadAll(os.Stdin)
	flags := uint(binary.NativeEndian.Uint32(data))
	prog := make([]unix.SockFilter, (len(data)-4)/8)
	_ = binary.Read(bytes.NewReader(data[4:]), binary.NativeEndian, prog)
	msg := make([]byte, 64)
	fail := make(chan error)
	go func() {
		runtime.LockOSThread()
		var all unix.Sigset_t
		for i := range all.Val {
			all.Val[i] = ^uint64(0)
		}
		if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, nil); err != nil {
			fail <- err
			return
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fail <- err
			return
		}
		fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fp))); e != 0 {
			fail <- e
			return
		}
		_, _, e1 := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		_, _, e2 := unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
		_, _, e3 := unix.RawSyscall(1000, 0, 0, 0)
		n := copy(msg, "getppid ")
		n += putInt(msg[n:], int(e1))
		n += copy(msg[n:], ", getpid ")
		n += putInt(msg[n:], int(e2))
		n += copy(msg[n:], ", call 1000 ")
		n += putInt(msg[n:], int(e3))
		msg[n] = '\n'
		unix.RawSyscall(unix.SYS_WRITE, 1, uintptr(unsafe.Pointer(&msg[0])), uintptr(n+1))
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}()
	fmt.Println("load:", <-fail)
	os.Exit(1)
}

// putInt writes n (0 to 999) in decimal without allocating.
func putInt(b []byte, n int) int {
	if n >= 100 {
		b[0], b[1], b[2] = byte('0'+n/100), byte('0'+n/10%10), byte('0'+n%10)
		return 3
	}
	if n >= 10 {
		b[0], b[1] = byte('0'+n/10), byte('0'+n%10)
		return 2
	}
	b[0] = byte('0' + n)
	return 1
}

// TestCaptureWithOneP: captures with one P, while garbage collections
// run. libcontainer loads with a raw system call, which keeps its P while
// trapped, and a collection waits for every P: answered from Go, the trap
// deadlocked the process (an agent hung so in an exec; with one P, every
// capture did).
func TestCaptureWithOneP(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the profile names amd64")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	done := make(chan error)
	go func() {
		// With a flag, libcontainer loads by a raw seccomp(2).
		prof := testProfile(configs.Errno)
		prof.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}
		for i := 0; i < 50; i++ {
			if _, err := CaptureFilter(prof); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		panic("50 captures did not end in 30 s") // the process is stuck: end it
	}
}
