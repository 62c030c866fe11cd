package cli

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPluginLs(t *testing.T) {
	list := `[{"Name":"mossnet","Kind":"network","Version":"0.4.0","Path":"/usr/lib/moss/plugins/mossnet","Builtin":false,"Status":"restarting","Pid":0,"Error":"exit status 2"},
		{"Name":"bridge","Kind":"network","Version":"1.0.0","Path":"","Builtin":true,"Status":"running","Pid":4242},
		{"Name":"local","Kind":"volume","Version":"1.0.0","Path":"","Builtin":true,"Status":"running","Pid":4243},
		{"Name":"broken","Kind":"network","Version":"","Path":"/opt/broken","Builtin":false,"Status":"failed","Pid":0,"Error":"handshake: timeout"}]`
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "table", args: []string{"plugin", "ls"}, stdout: "" +
			"NAME      KIND      VERSION   STATUS       PATH\n" +
			"bridge    network   1.0.0     running      built-in\n" +
			"broken    network             failed       /opt/broken\n" +
			"mossnet   network   0.4.0     restarting   /usr/lib/moss/plugins/mossnet\n" +
			"local     volume    1.0.0     running      built-in\n"},
		{name: "list alias, quiet", args: []string{"plugin", "list", "-q"}, stdout: "bridge\nbroken\nmossnet\nlocal\n"},
		{name: "format", args: []string{"plugin", "ls", "--format", "{{.Name}}:{{.Pid}}:{{.Builtin}}:{{.Error}}"},
			stdout: "bridge:4242:true:\nbroken::false:handshake: timeout\nmossnet::false:exit status 2\nlocal:4243:true:\n"},
		{name: "table format", args: []string{"plugin", "ls", "--format", "table {{.Name}}\t{{.Error}}"},
			stdout: "NAME      ERROR\nbridge    \nbroken    handshake: timeout\nmossnet   exit status 2\nlocal     \n"},
		{name: "json", args: []string{"plugin", "ls", "--format", "json"}, stdout: "" +
			`{"Name":"bridge","Kind":"network","Version":"1.0.0","Path":"","Builtin":true,"Status":"running","Pid":4242,"Error":""}` + "\n" +
			`{"Name":"broken","Kind":"network","Version":"","Path":"/opt/broken","Builtin":false,"Status":"failed","Pid":0,"Error":"handshake: timeout"}` + "\n" +
			`{"Name":"mossnet","Kind":"network","Version":"0.4.0","Path":"/usr/lib/moss/plugins/mossnet","Builtin":false,"Status":"restarting","Pid":0,"Error":"exit status 2"}` + "\n" +
			`{"Name":"local","Kind":"volume","Version":"1.0.0","Path":"","Builtin":true,"Status":"running","Pid":4243,"Error":""}` + "\n"},
		{name: "arguments", args: []string{"plugin", "ls", "x"}, code: 1, stderr: `"moss plugin ls" accepts no arguments.`},
		{name: "unknown verb", args: []string{"plugin", "install", "x"}, code: 1, stderr: "moss: 'plugin install' is not a moss command."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.handle("GET /moss/v1/plugins", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, list) })
			r := moss("", tc.args...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.HasPrefix(r.stderr, tc.stderr) || (tc.stderr == "" && r.stderr != "") {
				t.Fatalf("exit %d stdout:\n%s\nstderr %q\nwant exit %d stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
			if tc.code == 0 {
				if got := f.calls(); len(got) != 1 || got[0] != "GET /moss/v1/plugins" {
					t.Errorf("requests %v", got)
				}
			}
		})
	}
	t.Run("agent without plugins", func(t *testing.T) {
		newFakeAgent(t)
		r := moss("", "plugin", "ls")
		if r.code != 1 || !strings.HasPrefix(r.stderr, "Error response from daemon:") {
			t.Fatalf("%+v", r)
		}
	})
}
