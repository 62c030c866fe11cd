package cli

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// createBody runs `moss create ARGS img` against a fake agent and returns
// the create request's body decoded generically.
func createBody(t *testing.T, args ...string) (map[string]interface{}, result, *fakeAgent) {
	t.Helper()
	f := newFakeAgent(t)
	f.json("POST /containers/create", http.StatusCreated, container.CreateResponse{ID: testID})
	r := moss("", append(append([]string{"create"}, args...), "img")...)
	req, ok := f.find("POST", "/containers/create")
	if !ok {
		return nil, r, f
	}
	var body map[string]interface{}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatal(err)
	}
	return body, r, f
}

// jsonOf re-encodes v compactly with sorted keys, for comparisons.
func jsonOf(v interface{}) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestRunNetworkRequest(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		mode      string // HostConfig.NetworkMode
		endpoints string // NetworkingConfig.EndpointsConfig as JSON
	}{
		{"no network", nil, "", `{}`},
		{"user-defined network alone", []string{"--network", "mynet"}, "mynet", `{}`},
		{"none", []string{"--net", "none"}, "none", `{}`},
		{"aliases and ip", []string{"--network", "mynet", "--network-alias", "a1", "--net-alias", "a2", "--ip", "10.0.0.5"}, "mynet",
			`{"mynet":{"Aliases":["a1","a2"],"DNSNames":null,"DriverOpts":null,"EndpointID":"","Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"GwPriority":0,` +
				`"IPAMConfig":{"IPv4Address":"10.0.0.5"},"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","Links":null,"MacAddress":"","NetworkID":""}}`},
		{"ip6", []string{"--network", "mynet", "--ip6", "fd00::7"}, "mynet",
			`{"mynet":{"Aliases":null,"DNSNames":null,"DriverOpts":null,"EndpointID":"","Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"GwPriority":0,` +
				`"IPAMConfig":{"IPv6Address":"fd00::7"},"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","Links":null,"MacAddress":"","NetworkID":""}}`},
		{"ip without network goes to the default one", []string{"--ip", "10.0.0.9"}, "default",
			`{"default":{"Aliases":null,"DNSNames":null,"DriverOpts":null,"EndpointID":"","Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"GwPriority":0,` +
				`"IPAMConfig":{"IPv4Address":"10.0.0.9"},"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","Links":null,"MacAddress":"","NetworkID":""}}`},
		{"long syntax", []string{"--network", "name=mynet,alias=x,ip=10.0.0.3,driver-opt=k=v"}, "mynet",
			`{"mynet":{"Aliases":["x"],"DNSNames":null,"DriverOpts":{"k":"v"},"EndpointID":"","Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"GwPriority":0,` +
				`"IPAMConfig":{"IPv4Address":"10.0.0.3"},"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","Links":null,"MacAddress":"","NetworkID":""}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, r, f := createBody(t, tc.args...)
			if r.code != 0 || body == nil {
				t.Fatalf("%+v, requests %v", r, f.calls())
			}
			host := body["HostConfig"].(map[string]interface{})
			if mode, _ := host["NetworkMode"].(string); mode != tc.mode {
				t.Errorf("NetworkMode %q, want %q", mode, tc.mode)
			}
			nc, ok := body["NetworkingConfig"].(map[string]interface{})
			if !ok {
				t.Fatalf("no NetworkingConfig in %s", jsonOf(body))
			}
			if got := jsonOf(nc["EndpointsConfig"]); got != tc.endpoints {
				t.Errorf("EndpointsConfig\n%s\nwant\n%s", got, tc.endpoints)
			}
		})
	}
	t.Run("two networks", func(t *testing.T) {
		body, r, _ := createBody(t, "--network", "a", "--network", "b", "--network-alias", "x")
		if r.code != 0 {
			t.Fatalf("%+v", r)
		}
		eps := body["NetworkingConfig"].(map[string]interface{})["EndpointsConfig"].(map[string]interface{})
		if len(eps) != 2 || jsonOf(eps["a"].(map[string]interface{})["Aliases"]) != `["x"]` || eps["b"].(map[string]interface{})["Aliases"] != nil {
			t.Errorf("endpoints %s: want a (alias x) and b", jsonOf(eps))
		}
		if body["HostConfig"].(map[string]interface{})["NetworkMode"] != "a" {
			t.Errorf("network mode %v, want the first network", body["HostConfig"])
		}
	})
}

func TestRunPortsRequest(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		exposed  []string
		bindings string
		all      bool
	}{
		{"none", nil, nil, `{}`, false},
		{"forms", []string{"-p", "8080:80", "-p", "127.0.0.1:18080:80/tcp", "-p", "53:53/udp", "-p", "9000", "-p", "127.0.0.1::90",
			"-p", "[::1]:5000:5000", "--publish", "published=7070,target=70,protocol=sctp"},
			[]string{"5000/tcp", "53/udp", "70/sctp", "80/tcp", "90/tcp", "9000/tcp"},
			`{"5000/tcp":[{"HostIp":"::1","HostPort":"5000"}],"53/udp":[{"HostIp":"","HostPort":"53"}],"70/sctp":[{"HostIp":"","HostPort":"7070"}],` +
				`"80/tcp":[{"HostIp":"","HostPort":"8080"},{"HostIp":"127.0.0.1","HostPort":"18080"}],"90/tcp":[{"HostIp":"127.0.0.1","HostPort":""}],"9000/tcp":[{"HostIp":"","HostPort":""}]}`, false},
		{"ranges", []string{"-p", "8080-8081:80-81", "-p", "7000-7010:70/udp"},
			[]string{"70/udp", "80/tcp", "81/tcp"},
			`{"70/udp":[{"HostIp":"","HostPort":"7000-7010"}],"80/tcp":[{"HostIp":"","HostPort":"8080"}],"81/tcp":[{"HostIp":"","HostPort":"8081"}]}`, false},
		{"expose and publish all", []string{"-P", "--expose", "100-102", "--expose", "5000/UDP"},
			[]string{"100/tcp", "101/tcp", "102/tcp", "5000/udp"}, `{}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, r, f := createBody(t, tc.args...)
			if r.code != 0 || body == nil {
				t.Fatalf("%+v, requests %v", r, f.calls())
			}
			var exposed []string
			if m, ok := body["ExposedPorts"].(map[string]interface{}); ok {
				for p := range m {
					exposed = append(exposed, p)
				}
			}
			sort.Strings(exposed)
			if !reflect.DeepEqual(exposed, tc.exposed) {
				t.Errorf("ExposedPorts %v, want %v", exposed, tc.exposed)
			}
			host := body["HostConfig"].(map[string]interface{})
			if got := jsonOf(host["PortBindings"]); got != tc.bindings {
				t.Errorf("PortBindings\n%s\nwant\n%s", got, tc.bindings)
			}
			if host["PublishAllPorts"] != tc.all {
				t.Errorf("PublishAllPorts %v, want %v", host["PublishAllPorts"], tc.all)
			}
		})
	}
}

func TestRunExtraHosts(t *testing.T) {
	body, r, _ := createBody(t, "--add-host", "a:1.2.3.4", "--add-host", "gw:host-gateway", "--add-host", "c=::1",
		"--add-host", "d:::1", "--add-host", "e:[fd00::1]", "--add-host", "f;g:10.0.0.1")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	want := `["a:1.2.3.4","gw:host-gateway","c:::1","d:::1","e:fd00::1","f;g:10.0.0.1"]`
	if got := jsonOf(body["HostConfig"].(map[string]interface{})["ExtraHosts"]); got != want {
		t.Errorf("ExtraHosts %s, want %s", got, want)
	}
}

// TestRunNetworkErrors: what docker refuses before sending anything, with
// its messages; flag errors and option errors both exit 125.
func TestRunNetworkErrors(t *testing.T) {
	cases := []struct {
		args   []string
		stderr string
	}{
		{[]string{"-p", "70000:80"}, "moss: invalid hostPort: 70000"},
		{[]string{"-p", "80:70000"}, "moss: invalid containerPort: 70000"},
		{[]string{"-p", "80:0"}, "moss: invalid containerPort: 0"},
		{[]string{"-p", "0"}, "moss: invalid containerPort: 0"},
		{[]string{"-p", "x:80"}, "moss: invalid hostPort: x"},
		{[]string{"-p", "8081-8080:80"}, "moss: invalid hostPort: 8081-8080"},
		{[]string{"-p", "8080:80-81"}, "moss: invalid ranges specified for container and host Ports: 80-81 and 8080"},
		{[]string{"-p", "1.2.3:80:80"}, "moss: invalid IP address: 1.2.3"},
		{[]string{"-p", "80/foo"}, "moss: invalid proto: foo"},
		{[]string{"-p", ""}, "moss: no port specified: <empty>"},
		{[]string{"-p", "published=8080,bad"}, "moss: invalid publish opts format (should be name=value but got 'bad')"},
		{[]string{"--expose", "80:80"}, "moss: invalid port format for --expose: 80:80"},
		{[]string{"--expose", "x"}, "moss: invalid range format for --expose: x, error:"},
		{[]string{"--expose", "70000"}, "moss: invalid range format for --expose: 70000, error:"},
		{[]string{"--expose", "0"}, "moss: invalid range format for --expose: 0, error:"},
		{[]string{"--add-host", "a:x"}, `moss: invalid argument "a:x" for "--add-host" flag: invalid IP address in add-host: "x"` + "\nSee 'moss create --help'."},
		{[]string{"--add-host", "a"}, `invalid argument "a" for "--add-host" flag: bad format for add-host: "a"`},
		{[]string{"--add-host", ":1.2.3.4"}, `bad format for add-host: ":1.2.3.4"`},
		{[]string{"--ip", "x", "--network", "n"}, `invalid argument "x" for "--ip" flag: failed to parse IP: "x"`},
		{[]string{"--ip", "fd00::1", "--network", "n"}, `invalid argument "fd00::1" for "--ip" flag: invalid IPv4 address: fd00::1`},
		{[]string{"--ip6", "10.0.0.1", "--network", "n"}, `invalid argument "10.0.0.1" for "--ip6" flag: invalid IPv6 address: 10.0.0.1`},
		{[]string{"--network-alias", "a"}, "moss: network-scoped aliases are only supported for user-defined networks"},
		{[]string{"--network", "bridge", "--network-alias", "a"}, "network-scoped aliases are only supported for user-defined networks"},
		{[]string{"--network", "n", "--network", "n"}, `moss: network "n" is specified multiple times`},
		{[]string{"--network", "n", "--network", "host"}, "conflicting options: cannot attach both user-defined and non-user-defined network-modes"},
		{[]string{"--network", "name=n,alias=x", "--network-alias", "y"}, "conflicting options: cannot specify both --network-alias and per-network alias"},
		{[]string{"--network", "name=n,ip=10.0.0.1", "--ip", "10.0.0.2"}, "conflicting options: cannot specify both --ip and per-network IPv4 address"},
		{[]string{"--network", ""}, "moss: no name set for network"},
		{[]string{"--network", "name=n,foo=b"}, `invalid argument "name=n,foo=b" for "--network" flag: invalid field key foo`},
		{[]string{"--network", "alias=x"}, "network name/id is not specified"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, r, f := createBody(t, tc.args...)
			if r.code != 125 || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d stderr %q, want 125 and %q", r.code, r.stderr, tc.stderr)
			}
			if len(f.calls()) > 0 {
				t.Fatalf("requests sent: %v", f.calls())
			}
		})
	}
}
