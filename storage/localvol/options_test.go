package localvol

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestParseOptions: o's flags become mount(2) flags, the rest the file
// system's data; propagation and recursion apart.
func TestParseOptions(t *testing.T) {
	for _, c := range []struct {
		o           string
		flags, prop uintptr
		data        string
		bind        bool
	}{
		{"", 0, 0, "", false},
		{"defaults", 0, 0, "", false},
		{"size=64m,uid=1000", 0, 0, "size=64m,uid=1000", false},
		{"ro,nosuid,nodev,noexec,size=1m", unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, 0, "size=1m", false},
		{"ro,rw", 0, 0, "", false},
		{"noatime,nodiratime,mode=1777", unix.MS_NOATIME | unix.MS_NODIRATIME, 0, "mode=1777", false},
		{"bind", unix.MS_BIND, 0, "", true},
		{"bind,ro", unix.MS_BIND | unix.MS_RDONLY, 0, "", true},
		{"rbind", unix.MS_BIND | unix.MS_REC, 0, "", true},
		{"bind,rprivate", unix.MS_BIND, unix.MS_PRIVATE | unix.MS_REC, "", true},
		{"rbind,slave", unix.MS_BIND | unix.MS_REC, unix.MS_SLAVE, "", true},
		{"shared,size=1m", 0, unix.MS_SHARED, "size=1m", false},
	} {
		s, err := parseOptions(map[string]string{"type": "none", "device": "/srv", "o": c.o})
		if c.o == "" || !c.bind {
			s, err = parseOptions(map[string]string{"type": "tmpfs", "device": "tmpfs", "o": c.o})
		}
		if err != nil {
			t.Errorf("o=%q: %v", c.o, err)
			continue
		}
		if s.flags != c.flags || s.propagation != c.prop || s.data != c.data || s.bind != c.bind {
			t.Errorf("o=%q: flags %#x propagation %#x data %q bind %v, want %#x %#x %q %v", c.o, s.flags, s.propagation, s.data, s.bind, c.flags, c.prop, c.data, c.bind)
		}
	}
	if s, err := parseOptions(nil); s != nil || err != nil {
		t.Errorf("no options: %v, %v; want a plain directory", s, err)
	}
}
