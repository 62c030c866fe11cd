package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
)

const netID = "5f3c0ffee5f3c0ffee5f3c0ffee5f3c0ffee5f3c0ffee5f3c0ffee5f3c0ffee1"

func TestNetworkCreate(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // the request body, generically re-encoded
	}{
		{"defaults", []string{"foo"},
			`{"Attachable":false,"ConfigFrom":null,"ConfigOnly":false,"Driver":"bridge","IPAM":{"Config":[],"Driver":"default","Options":{}},"Ingress":false,"Internal":false,"Labels":{},"Name":"foo","Options":{},"Scope":""}`},
		{"everything", []string{"-d", "macvlan", "--subnet", "10.1.0.0/24", "--gateway", "10.1.0.1", "--ip-range", "10.1.0.128/25",
			"--subnet", "fd00::/64", "--aux-address", "host=10.1.0.2", "--internal", "--ipv6", "--ipv4=false", "--label", "a=b", "--label", "c",
			"-o", "com.x=1", "--opt", "y", "--ipam-driver", "other", "--ipam-opt", "k=v", "foo"},
			`{"Attachable":false,"ConfigFrom":null,"ConfigOnly":false,"Driver":"macvlan","EnableIPv4":false,"EnableIPv6":true,"IPAM":{"Config":[` +
				`{"AuxiliaryAddresses":{"host":"10.1.0.2"},"Gateway":"10.1.0.1","IPRange":"10.1.0.128/25","Subnet":"10.1.0.0/24"},{"Subnet":"fd00::/64"}],` +
				`"Driver":"other","Options":{"k":"v"}},"Ingress":false,"Internal":true,"Labels":{"a":"b","c":""},"Name":"foo","Options":{"com.x":"1","y":""},"Scope":""}`},
		{"comma-separated subnets", []string{"--subnet=10.0.0.0/24,10.2.0.0/24", "foo"},
			`{"Attachable":false,"ConfigFrom":null,"ConfigOnly":false,"Driver":"bridge","IPAM":{"Config":[{"Subnet":"10.0.0.0/24"},{"Subnet":"10.2.0.0/24"}],"Driver":"default","Options":{}},` +
				`"Ingress":false,"Internal":false,"Labels":{},"Name":"foo","Options":{},"Scope":""}`},
		{"a bare address", []string{"--subnet", "10.3.0.1", "foo"},
			`{"Attachable":false,"ConfigFrom":null,"ConfigOnly":false,"Driver":"bridge","IPAM":{"Config":[{"Subnet":"10.3.0.1/32"}],"Driver":"default","Options":{}},` +
				`"Ingress":false,"Internal":false,"Labels":{},"Name":"foo","Options":{},"Scope":""}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.json("POST /networks/create", http.StatusCreated, network.CreateResponse{ID: netID})
			r := moss("", append([]string{"network", "create"}, tc.args...)...)
			if r.code != 0 || r.stdout != netID+"\n" || r.stderr != "" {
				t.Fatalf("%+v", r)
			}
			req, ok := f.find("POST", "/networks/create")
			if !ok {
				t.Fatalf("no create request: %v", f.calls())
			}
			var body interface{}
			if err := json.Unmarshal(req.Body, &body); err != nil {
				t.Fatal(err)
			}
			if got := jsonOf(body); got != tc.want {
				t.Errorf("body\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestNetworkCreateErrors(t *testing.T) {
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--subnet", "x", "foo"}, 1, "invalid subnet x: invalid CIDR block notation\n"},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "x", "foo"}, 1, "invalid CIDR address: x\n"},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "10.1.0.0/24", "foo"}, 1, "no matching subnet for range 10.1.0.0/24\n"},
		{[]string{"--subnet", "10.0.0.0/24", "--gateway", "x", "foo"}, 1, "no matching subnet for gateway x\n"},
		{[]string{"--subnet", "10.0.0.0/24", "--gateway", "10.1.0.1", "foo"}, 1, "no matching subnet for gateway 10.1.0.1\n"},
		{[]string{"--gateway", "10.0.0.1", "foo"}, 1, "every ip-range or gateway must have a corresponding subnet\n"},
		{[]string{"--ip-range", "10.0.0.0/24", "--subnet", "10.0.0.0/16", "--subnet", "x", "foo"}, 1, "invalid subnet: invalid CIDR address: x\n"},
		{[]string{"--subnet", "10.0.0.0/24", "--subnet", "10.0.0.0/16", "foo"}, 1, "multiple overlapping subnet configuration is not supported\n"},
		{[]string{"--subnet", "10.0.0.0/24", "--subnet", "10.1.0.0/24", "--gateway", "10.0.0.1", "--gateway", "10.0.0.2", "foo"}, 1,
			"cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/24)\n"},
		{[]string{"--subnet", "10.0.0.0/24", "--aux-address", "h=10.9.0.1", "foo"}, 1, "no matching subnet for aux-address 10.9.0.1\n"},
		{[]string{"--label", "a b=c", "foo"}, 125, `moss: invalid argument "a b=c" for "--label" flag: label 'a b' contains whitespaces` + "\nSee 'moss network create --help'.\n"},
		{[]string{"--label", "=x", "foo"}, 125, `moss: invalid argument "=x" for "--label" flag: invalid label '=x': empty name`},
		{[]string{"foo", "bar"}, 1, `"moss network create" requires exactly 1 argument.`},
		{nil, 1, `"moss network create" requires exactly 1 argument.`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAgent(t)
			r := moss("", append([]string{"network", "create"}, tc.args...)...)
			if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.stderr) || r.stdout != "" {
				t.Fatalf("exit %d stdout %q stderr %q, want %d and %q", r.code, r.stdout, r.stderr, tc.code, tc.stderr)
			}
			if len(f.calls()) > 0 {
				t.Fatalf("requests sent: %v", f.calls())
			}
		})
	}
}

func networksAgent(t *testing.T) *fakeAgent {
	f := newFakeAgent(t)
	created := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)
	list := []network.Summary{
		{Network: network.Network{Name: "net10", ID: strings.Repeat("a", 64), Created: created, Scope: "local", Driver: "bridge",
			Labels: map[string]string{"x": "y", "a": "b"}}},
		{Network: network.Network{Name: "bridge", ID: strings.Repeat("b", 64), Created: created, Scope: "local", Driver: "bridge", EnableIPv4: true}},
		{Network: network.Network{Name: "net2", ID: strings.Repeat("c", 64), Created: created, Scope: "local", Driver: "macvlan",
			EnableIPv4: true, EnableIPv6: true, Internal: true}},
	}
	f.json("GET /networks", http.StatusOK, list)
	return f
}

func TestNetworkLs(t *testing.T) {
	a, b, c := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	cases := []struct {
		name    string
		args    []string
		code    int
		stdout  string
		stderr  string
		filters string
	}{
		{name: "table, natural order by name", args: []string{"network", "ls"}, stdout: "NETWORK ID     NAME      DRIVER    SCOPE\n" +
			"bbbbbbbbbbbb   bridge    bridge    local\ncccccccccccc   net2      macvlan   local\naaaaaaaaaaaa   net10     bridge    local\n"},
		{name: "quiet", args: []string{"network", "list", "-q"}, stdout: "bbbbbbbbbbbb\ncccccccccccc\naaaaaaaaaaaa\n"},
		{name: "no-trunc", args: []string{"network", "ls", "-q", "--no-trunc"}, stdout: b + "\n" + c + "\n" + a + "\n"},
		{name: "quiet with a format", args: []string{"network", "ls", "-q", "--format", "{{.Name}}"}, stdout: "bridge\nnet2\nnet10\n"},
		{name: "format", args: []string{"network", "ls", "--format", `{{.Name}} {{.IPv4}} {{.IPv6}} {{.Internal}} {{.Labels}} {{.Label "x"}} {{.CreatedAt}}`},
			stdout: "bridge true false false   2024-01-02 03:04:05.123456789 +0000 UTC\nnet2 true true true   2024-01-02 03:04:05.123456789 +0000 UTC\n" +
				"net10 false false false a=b,x=y y 2024-01-02 03:04:05.123456789 +0000 UTC\n"},
		{name: "table format", args: []string{"network", "ls", "--format", "table {{.Name}}\t{{.Internal}}"},
			stdout: "NAME      INTERNAL\nbridge    false\nnet2      true\nnet10     false\n"},
		{name: "json", args: []string{"network", "ls", "--format", "json", "-f", "name=net2"},
			stdout: `{"CreatedAt":"2024-01-02 03:04:05.123456789 +0000 UTC","Driver":"bridge","ID":"bbbbbbbbbbbb","IPv4":"true","IPv6":"false","Internal":"false","Labels":"","Name":"bridge","Scope":"local"}` + "\n" +
				`{"CreatedAt":"2024-01-02 03:04:05.123456789 +0000 UTC","Driver":"macvlan","ID":"cccccccccccc","IPv4":"true","IPv6":"true","Internal":"true","Labels":"","Name":"net2","Scope":"local"}` + "\n" +
				`{"CreatedAt":"2024-01-02 03:04:05.123456789 +0000 UTC","Driver":"bridge","ID":"aaaaaaaaaaaa","IPv4":"false","IPv6":"false","Internal":"false","Labels":"a=b,x=y","Name":"net10","Scope":"local"}` + "\n",
			filters: `{"name":{"net2":true}}`},
		{name: "filters", args: []string{"network", "ls", "-q", "--filter", "driver=bridge", "-f", "label=a=b", "--filter", "name=x"},
			stdout: "bbbbbbbbbbbb\ncccccccccccc\naaaaaaaaaaaa\n", filters: `{"driver":{"bridge":true},"label":{"a=b":true},"name":{"x":true}}`},
		{name: "bad filter", args: []string{"network", "ls", "-f", "foo"}, code: 125,
			stderr: `moss: invalid argument "foo" for "-f, --filter" flag: bad format of filter (expected name=value)` + "\nSee 'moss network ls --help'.\n"},
		{name: "arguments", args: []string{"network", "ls", "x"}, code: 1, stderr: `"moss network ls" accepts no arguments.`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := networksAgent(t)
			r := moss("", tc.args...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.HasPrefix(r.stderr, tc.stderr) || (tc.stderr == "" && r.stderr != "") {
				t.Fatalf("exit %d stdout:\n%s\nstderr %q\nwant exit %d stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
			if tc.code != 0 {
				if len(f.calls()) > 0 {
					t.Fatalf("requests sent: %v", f.calls())
				}
				return
			}
			req, _ := f.find("GET", "/networks")
			if got := strings.Join(req.Query["filters"], ""); got != tc.filters {
				t.Errorf("filters %q, want %q", got, tc.filters)
			}
		})
	}
}

func TestNetworkInspect(t *testing.T) {
	mynet := `{"Name":"mynet","Id":"` + netID + `","Driver":"bridge","IPAM":{"Driver":"default","Config":[{"Subnet":"10.0.0.0/24"}]},"Containers":{},"MossExtra":1}`
	cases := []struct {
		args           []string
		code           int
		stdout, stderr string
		verbose        bool
	}{
		{args: []string{"mynet"}, stdout: "[\n    {\n        \"Name\": \"mynet\",\n        \"Id\": \"" + netID + "\",\n        \"Driver\": \"bridge\",\n" +
			"        \"IPAM\": {\n            \"Driver\": \"default\",\n            \"Config\": [\n                {\n                    \"Subnet\": \"10.0.0.0/24\"\n" +
			"                }\n            ]\n        },\n        \"Containers\": {},\n        \"MossExtra\": 1\n    }\n]\n"},
		{args: []string{"-f", "{{.Name}} {{(index .IPAM.Config 0).Subnet}} {{.MossExtra}}", "mynet", "mynet"}, stdout: "mynet 10.0.0.0/24 1\nmynet 10.0.0.0/24 1\n"},
		{args: []string{"--format", "json", "-v", "mynet"}, stdout: jsonOfRaw(mynet) + "\n", verbose: true},
		{args: []string{"nope"}, code: 1, stdout: "[]\n", stderr: "Error response from daemon: network nope not found\n"},
		{args: []string{"-f", "{{.Name}}", "nope", "mynet"}, code: 1, stdout: "mynet\n", stderr: "Error response from daemon: network nope not found\n"},
		{args: []string{"-f", "{{.Name", "mynet"}, code: 1, stderr: "moss: template parsing error"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAgent(t)
			f.handle("GET /networks/{id}", func(w http.ResponseWriter, r *http.Request) {
				if r.PathValue("id") != "mynet" {
					w.WriteHeader(http.StatusNotFound)
					json.NewEncoder(w).Encode(apiErr("network " + r.PathValue("id") + " not found"))
					return
				}
				io.WriteString(w, mynet)
			})
			r := moss("", append([]string{"network", "inspect"}, tc.args...)...)
			if r.code != tc.code || (tc.stdout != "" && r.stdout != tc.stdout) || !strings.HasPrefix(r.stderr, tc.stderr) || (tc.stderr == "" && r.stderr != "") {
				t.Fatalf("exit %d stdout:\n%s\nstderr %q\nwant exit %d stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
			for _, req := range f.requests() {
				if got := strings.Join(req.Query["verbose"], "") == "true"; got != tc.verbose {
					t.Errorf("verbose query %v, want %v", req.Query, tc.verbose)
				}
			}
		})
	}
}

// jsonOfRaw compacts a JSON text as `--format json` prints it.
func jsonOfRaw(s string) string {
	var v interface{}
	_ = json.Unmarshal([]byte(s), &v)
	return jsonOf(v)
}

func TestNetworkRm(t *testing.T) {
	cases := []struct {
		args           []string
		code           int
		stdout, stderr string
		deletes        []string
	}{
		{args: []string{"a", "b"}, stdout: "a\nb\n", deletes: []string{"a", "b"}},
		{args: []string{"a", "inuse", "nope", "b"}, code: 1, stdout: "a\nb\n",
			stderr: "Error response from daemon: error while removing network: network inuse has active endpoints\n" +
				"Error response from daemon: network nope not found\nexit status 1\n", deletes: []string{"a", "inuse", "nope", "b"}},
		{args: []string{"-f", "nope", "a"}, stdout: "a\n", deletes: []string{"nope", "a"}},
		{args: []string{"--force", "inuse"}, code: 1, stderr: "Error response from daemon: error while removing network: network inuse has active endpoints\nexit status 1\n", deletes: []string{"inuse"}},
		{args: nil, code: 1, stderr: `"moss network rm" requires at least 1 argument.`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAgent(t)
			f.handle("DELETE /networks/{id}", func(w http.ResponseWriter, r *http.Request) {
				switch id := r.PathValue("id"); id {
				case "nope":
					w.WriteHeader(http.StatusNotFound)
					json.NewEncoder(w).Encode(apiErr("network nope not found"))
				case "inuse":
					w.WriteHeader(http.StatusForbidden)
					json.NewEncoder(w).Encode(apiErr("error while removing network: network inuse has active endpoints"))
				default:
					w.WriteHeader(http.StatusNoContent)
				}
			})
			r := moss("", append([]string{"network", "rm"}, tc.args...)...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.HasPrefix(r.stderr, tc.stderr) || (tc.stderr == "" && r.stderr != "") {
				t.Fatalf("exit %d stdout %q stderr %q, want %d %q %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
			var deletes []string
			for _, req := range f.requests() {
				if req.Method == "DELETE" {
					deletes = append(deletes, strings.TrimPrefix(req.Path, "/networks/"))
				}
			}
			if !reflect.DeepEqual(deletes, tc.deletes) {
				t.Errorf("deleted %v, want %v", deletes, tc.deletes)
			}
		})
	}
}

func TestNetworkPrune(t *testing.T) {
	const prompt = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
	cases := []struct {
		name, stdin string
		args        []string
		deleted     []string
		stdout      string
		pruned      bool
		filters     string
	}{
		{name: "declined", stdin: "n\n", stdout: prompt},
		{name: "no answer", stdin: "", stdout: prompt},
		{name: "confirmed", stdin: "y\n", deleted: []string{"n1", "n2"}, stdout: prompt + "Deleted Networks:\nn1\nn2\n\n", pruned: true},
		{name: "forced with filters", args: []string{"-f", "--filter", "until=1h", "--filter", "label=a"}, deleted: []string{"n1"},
			stdout: "Deleted Networks:\nn1\n\n", pruned: true, filters: `{"label":{"a":true},"until":{"1h":true}}`},
		{name: "nothing deleted", args: []string{"--force"}, stdout: "", pruned: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.json("POST /networks/prune", http.StatusOK, network.PruneReport{NetworksDeleted: tc.deleted})
			r := moss(tc.stdin, append([]string{"network", "prune"}, tc.args...)...)
			if r.code != 0 || r.stdout != tc.stdout || r.stderr != "" {
				t.Fatalf("%+v, want stdout %q", r, tc.stdout)
			}
			req, pruned := f.find("POST", "/networks/prune")
			if pruned != tc.pruned {
				t.Fatalf("pruned %v, want %v: %v", pruned, tc.pruned, f.calls())
			}
			if got := strings.Join(req.Query["filters"], ""); got != tc.filters {
				t.Errorf("filters %q, want %q", got, tc.filters)
			}
		})
	}
}

func TestNetworkConnectDisconnect(t *testing.T) {
	cases := []struct {
		args []string
		path string
		body string
	}{
		{[]string{"connect", "mynet", "web"}, "/networks/mynet/connect",
			`{"Container":"web","EndpointConfig":{"Aliases":null,"DNSNames":null,"DriverOpts":null,"EndpointID":"","Gateway":"","GlobalIPv6Address":"",` +
				`"GlobalIPv6PrefixLen":0,"GwPriority":0,"IPAMConfig":{},"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","Links":null,"MacAddress":"","NetworkID":""}}`},
		{[]string{"connect", "--alias", "a1", "--alias", "a2,a3", "--ip", "10.0.0.5", "--ip6", "fd00::5", "--driver-opt", "k=v", "--gw-priority", "3", "mynet", "web"},
			"/networks/mynet/connect",
			`{"Container":"web","EndpointConfig":{"Aliases":["a1","a2","a3"],"DNSNames":null,"DriverOpts":{"k":"v"},"EndpointID":"","Gateway":"","GlobalIPv6Address":"",` +
				`"GlobalIPv6PrefixLen":0,"GwPriority":3,"IPAMConfig":{"IPv4Address":"10.0.0.5","IPv6Address":"fd00::5"},"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"",` +
				`"Links":null,"MacAddress":"","NetworkID":""}}`},
		{[]string{"disconnect", "mynet", "web"}, "/networks/mynet/disconnect", `{"Container":"web","Force":false}`},
		{[]string{"disconnect", "-f", "mynet", "web"}, "/networks/mynet/disconnect", `{"Container":"web","Force":true}`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAgent(t)
			f.handle("POST /networks/{id}/{verb}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
			r := moss("", append([]string{"network"}, tc.args...)...)
			if r.code != 0 || r.stdout != "" || r.stderr != "" {
				t.Fatalf("%+v", r)
			}
			req, ok := f.find("POST", tc.path)
			if !ok {
				t.Fatalf("no request to %s: %v", tc.path, f.calls())
			}
			var body interface{}
			if err := json.Unmarshal(req.Body, &body); err != nil {
				t.Fatal(err)
			}
			if got := jsonOf(body); got != tc.body {
				t.Errorf("body\n%s\nwant\n%s", got, tc.body)
			}
		})
	}
	errCases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"connect", "--ip", "x", "n", "c"}, 125, `moss: invalid argument "x" for "--ip" flag: failed to parse IP: "x"`},
		{[]string{"connect", "--driver-opt", "novalue", "n", "c"}, 1, "invalid key value pair format in driver options\n"},
		{[]string{"connect", "n"}, 1, `"moss network connect" requires exactly 2 arguments.`},
		{[]string{"disconnect", "n", "c", "d"}, 1, `"moss network disconnect" requires exactly 2 arguments.`},
	}
	for _, tc := range errCases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f := newFakeAgent(t)
			r := moss("", append([]string{"network"}, tc.args...)...)
			if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.stderr) {
				t.Fatalf("exit %d stderr %q, want %d %q", r.code, r.stderr, tc.code, tc.stderr)
			}
			if len(f.calls()) > 0 {
				t.Fatalf("requests sent: %v", f.calls())
			}
		})
	}
	t.Run("agent error", func(t *testing.T) {
		f := newFakeAgent(t)
		f.json("POST /networks/{id}/connect", http.StatusNotFound, apiErr("network nope not found"))
		r := moss("", "network", "connect", "nope", "web")
		if r.code != 1 || r.stderr != "Error response from daemon: network nope not found\n" {
			t.Fatalf("%+v", r)
		}
	})
}

func TestNetworkGroup(t *testing.T) {
	newFakeAgent(t)
	r := moss("", "network", "frob")
	if r.code != 1 || !strings.Contains(r.stderr, "'network frob' is not a moss command") {
		t.Fatalf("%+v", r)
	}
	r = moss("", "network")
	for _, verb := range []string{"connect", "create", "disconnect", "inspect", "ls", "prune", "rm"} {
		if !strings.Contains(r.stdout, "\n  "+verb+" ") {
			t.Errorf("help lacks %s:\n%s", verb, r.stdout)
		}
	}
}
