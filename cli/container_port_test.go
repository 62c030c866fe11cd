package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestPort(t *testing.T) {
	webJSON := `{"Id":"` + testID + `","Name":"/web","NetworkSettings":{"Ports":{` +
		`"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18080"},{"HostIp":"::1","HostPort":"18080"}],` +
		`"53/udp":[{"HostIp":"0.0.0.0","HostPort":"5353"}],"9000/tcp":null,` +
		`"8080/tcp":[{"HostIp":"0.0.0.0","HostPort":"32768"}]}}}`
	cases := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{args: []string{"port", "web"}, stdout: "53/udp -> 0.0.0.0:5353\n80/tcp -> 127.0.0.1:18080\n80/tcp -> [::1]:18080\n8080/tcp -> 0.0.0.0:32768\n"},
		{args: []string{"port", "web", "80"}, stdout: "127.0.0.1:18080\n[::1]:18080\n"},
		{args: []string{"port", "web", "80/tcp"}, stdout: "127.0.0.1:18080\n[::1]:18080\n"},
		{args: []string{"container", "port", "web", "53/udp"}, stdout: "0.0.0.0:5353\n"},
		{args: []string{"port", "web", "53"}, code: 1, stderr: "Error: No public port '53' published for web\n"},
		{args: []string{"port", "web", "80/udp"}, code: 1, stderr: "Error: No public port '80/udp' published for web\n"},
		{args: []string{"port", "web", "9000"}, code: 1, stderr: "Error: No public port '9000' published for web\n"},
		{args: []string{"port", "web", "x"}, code: 1, stderr: "Error: invalid port (x): strconv.ParseUint: parsing \"x\": invalid syntax\n"},
		{args: []string{"port", "bare"}, stdout: ""},
		{args: []string{"port", "nope"}, code: 1, stderr: "Error response from daemon: No such container: nope\n"},
		{args: []string{"port"}, code: 1, stderr: `"moss port" requires at least 1 and at most 2 arguments.`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAgent(t)
			f.handle("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
				switch r.PathValue("id") {
				case "web":
					io.WriteString(w, webJSON)
				case "bare":
					io.WriteString(w, `{"Id":"`+testID+`","NetworkSettings":{"Ports":{}}}`)
				default:
					w.WriteHeader(http.StatusNotFound)
					json.NewEncoder(w).Encode(apiErr("No such container: " + r.PathValue("id")))
				}
			})
			r := moss("", tc.args...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.HasPrefix(r.stderr, tc.stderr) || (tc.stderr == "" && r.stderr != "") {
				t.Fatalf("exit %d stdout %q stderr %q, want %d %q %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestNaturalLess(t *testing.T) {
	in := []string{"net10", "net2", "a", "net02", "net1", "b1", "", "net", "8080/tcp -> x", "80/tcp -> [::1]:1", "80/tcp -> 127.0.0.1:1"}
	want := []string{"", "80/tcp -> 127.0.0.1:1", "80/tcp -> [::1]:1", "8080/tcp -> x", "a", "b1", "net", "net1", "net2", "net02", "net10"}
	sort.Slice(in, func(i, j int) bool { return naturalLess(in[i], in[j]) })
	if strings.Join(in, "|") != strings.Join(want, "|") {
		t.Fatalf("got  %q\nwant %q", in, want)
	}
}

// TestDisplayPorts: ps's PORTS column as docker prints it.
func TestDisplayPorts(t *testing.T) {
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	got := displayPorts([]container.PortSummary{
		{IP: ip("127.0.0.1"), PrivatePort: 80, PublicPort: 18080, Type: "tcp"},
		{IP: ip("::1"), PrivatePort: 80, PublicPort: 18080, Type: "tcp"},
		{IP: ip("0.0.0.0"), PrivatePort: 53, PublicPort: 53, Type: "udp"},
		{IP: ip("0.0.0.0"), PrivatePort: 54, PublicPort: 54, Type: "udp"},
		{PrivatePort: 9000, Type: "tcp"},
	})
	want := "0.0.0.0:53-54->53-54/udp, 9000/tcp, 127.0.0.1:18080->80/tcp, [::1]:18080->80/tcp"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}
