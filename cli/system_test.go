package cli

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestInfo(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("GET /info", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"Containers":3,"ContainersRunning":1,"ContainersPaused":0,"ContainersStopped":2,"Images":4,
			"ServerVersion":"0.1","Driver":"overlay","DriverStatus":[["Native Overlay Diff","true"]],
			"SecurityOptions":["name=seccomp,profile=builtin","name=rootless"],"KernelVersion":"6.1.0",
			"OperatingSystem":"Debian","OSType":"linux","Architecture":"x86_64","NCPU":8,"MemTotal":16697831424,
			"DockerRootDir":"/home/u/.local/share/moss","Warnings":["single-ID mapping"],"FutureField":{"x":1}}`)
	})
	f.handle("GET /moss/v1/info", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"Rootless":true,"IDMapping":{"Source":"single","UIDMap":["0:1000:1"]},"Storage":{"Driver":"overlay","Size":1234567890},"Warnings":[]}`)
	})
	r := moss("", "info")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	for _, want := range []string{"Client:\n Version:", "Server:\n Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 4\n",
		" Server Version: 0.1\n Storage Driver: overlay\n  Native Overlay Diff: true\n",
		" Security Options:\n  seccomp\n   Profile: builtin\n  rootless\n", " Kernel Version: 6.1.0\n", " Operating System: Debian\n",
		" CPUs: 8\n", " Total Memory: 15.55GiB\n", " Docker Root Dir: /home/u/.local/share/moss\n",
		"\nMoss:\n IDMapping:\n  Source: single\n  UIDMap: 0:1000:1\n Rootless: true\n Storage:\n  Driver: overlay\n  Size: 1234567890\n Warnings:\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.stderr != "WARNING: single-ID mapping\n" {
		t.Errorf("stderr %q", r.stderr)
	}
	r = moss("", "info", "--format", "{{.ServerVersion}} {{.FutureField.x}} {{.Moss.IDMapping.Source}} {{.ClientInfo.Context}}")
	if r.code != 0 || r.stdout != "0.1 1 single moss\n" {
		t.Fatalf("info --format: %+v", r)
	}
}

func TestVersion(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("GET /version", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"Platform":{"Name":"Moss"},"Components":[{"Name":"Engine","Version":"0.1"}],"Version":"0.1","ApiVersion":"1.47","MinAPIVersion":"1.24","GoVersion":"go1.26","Os":"linux","Arch":"amd64","KernelVersion":"6.1"}`)
	})
	r := moss("", "version")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	for _, want := range []string{"Client:\n Version:", " API version:       1.43\n", "Server: Moss\n Engine:\n  Version:          0.1\n",
		"  API version:      1.47 (minimum version 1.24)\n", "  OS/Arch:          linux/amd64\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("version lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := moss("", "version", "-f", "{{.Server.Version}} {{.Client.Os}}"); r.stdout != "0.1 linux\n" {
		t.Fatalf("version --format: %+v", r)
	}
}

func TestFormatHelpers(t *testing.T) {
	cases := []struct {
		tmpl string
		data interface{}
		want string
	}{
		{`{{json .}}`, map[string]string{"a": "<b>"}, `{"a":"<b>"}`},
		{`{{join .L ","}}`, map[string][]string{"L": {"x", "y"}}, "x,y"},
		{`{{split "a:b" ":"}}`, nil, "[a b]"},
		{`{{lower "AbC"}} {{upper "AbC"}} {{title "hello wORLD"}}`, nil, "abc ABC Hello WORLD"},
		{`{{truncate "abcdef" 3}}|{{truncate "ab" 3}}`, nil, "abc|ab"},
		{`[{{pad "x" 1 2}}][{{pad "" 1 2}}]`, nil, "[ x  ][]"},
	}
	for _, tc := range cases {
		var b strings.Builder
		if err := renderEach(&b, tc.tmpl, []interface{}{tc.data}); err != nil || b.String() != tc.want+"\n" {
			t.Errorf("%s: %q %v, want %q", tc.tmpl, b.String(), err, tc.want)
		}
	}
	for d, want := range map[time.Duration]string{
		500 * time.Millisecond: "Less than a second", 3 * time.Second: "3 seconds", 90 * time.Second: "About a minute",
		5 * time.Minute: "5 minutes", 3 * time.Hour: "3 hours", 72 * time.Hour: "3 days",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0B", 999: "999B", 4261000: "4.26MB", 1234567890: "1.23GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
	if got := tableHeader("{{.ID}}\t{{json .Names}}\t{{.Label \"x\"}}\t{{.Unknown}}", psHeaders); got != "CONTAINER ID\tNAMES\tLABEL\tUNKNOWN" {
		t.Errorf("header %q", got)
	}
	if got := ellipsis("héllo wörld", 6); got != "héllo…" {
		t.Errorf("ellipsis %q", got)
	}
	if shortID("sha256:0123456789abcdef") != "0123456789ab" {
		t.Error("shortID")
	}
}
