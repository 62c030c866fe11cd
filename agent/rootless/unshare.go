package rootless

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// IsUnshare reports whether the binary was started as rootlesskit's embedded
// unshare(1): rootlesskit's child runs its own executable under that name
// to create the detached network namespace.
func IsUnshare(argv0 string) bool { return filepath.Base(argv0) == "unshare" }

// RunUnshare implements the subset of unshare(1) rootlesskit uses:
// "unshare [-n|--net] CMD ARGS…".
func RunUnshare(args []string) int {
	err := func() error {
		args = args[1:]
		var flags uintptr
		for len(args) > 0 && (args[0] == "-n" || args[0] == "--net") {
			flags |= syscall.CLONE_NEWNET
			args = args[1:]
		}
		if len(args) == 0 {
			return errors.New("no command specified")
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
		return cmd.Run()
	}()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "unshare: %v\n", err)
	return 1
}
