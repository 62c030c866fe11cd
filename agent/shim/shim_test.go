package shim

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/moss-containers/moss/internal/atomicfile"
)

func TestExitStatusFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadExit(dir); err == nil {
		t.Fatal("exit status without a file")
	}
	if Alive(dir) {
		t.Fatal("alive without a pid file")
	}
	// A running process (this one) without an exit file is alive.
	if err := os.WriteFile(filepath.Join(dir, PidFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	if !Alive(dir) {
		t.Fatal("live shim reported dead")
	}
	st := []byte(`{"code":137,"signal":9,"finished_at":"2026-01-02T03:04:05Z"}`)
	if err := atomicfile.Write(filepath.Join(dir, ExitFile), st); err != nil {
		t.Fatal(err)
	}
	got, err := ReadExit(dir)
	if err != nil || got.Code != 137 || got.Signal != 9 || !got.FinishedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("%+v %v", got, err)
	}
	if Alive(dir) {
		t.Fatal("a shim with a recorded exit is alive")
	}
	// Wait on a socket nobody listens on falls back to the file.
	got, err = Wait(filepath.Join(dir, "nosock"), dir)
	if err != nil || got.Code != 137 {
		t.Fatalf("wait fallback: %+v %v", got, err)
	}
	if _, err := Start(filepath.Join(dir, "nosock")); err == nil {
		t.Fatal("start without a shim succeeded")
	}
}
