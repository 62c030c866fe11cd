package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 4's acceptance: networks, published ports, plugins.

// network creates a network that the test removes at its end.
func network(t *testing.T, args ...string) string {
	t.Helper()
	name := args[len(args)-1]
	id := strings.TrimSpace(mustMoss(t, append([]string{"network", "create"}, args...)...))
	t.Cleanup(func() { _ = exec.Command(mossBin, "network", "rm", name).Run() })
	return id
}

func ipOf(t *testing.T, ctr, net string) string {
	t.Helper()
	return strings.TrimSpace(mustMoss(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+net+"\").IPAddress}}", ctr))
}

// TestNetworkDNS: containers on a user-defined network find each other by
// name and alias (acceptance 1).
func TestNetworkDNS(t *testing.T) {
	network(t, "--subnet", "10.77.0.0/24", "net1")
	mustMoss(t, "run", "-d", "--name", "ct1", "--network", "net1", "--network-alias", "web", image, "sleep", "1000")
	rmf(t, "ct1")
	ip := ipOf(t, "ct1", "net1")
	if !strings.HasPrefix(ip, "10.77.0.") {
		t.Fatalf("ct1's address %q is not in 10.77.0.0/24", ip)
	}
	for _, name := range []string{"ct1", "web", "CT1", "ct1."} {
		r := moss(t, "run", "--rm", "--network", "net1", image, "ping", "-c1", "-W5", name)
		if r.code != 0 || !strings.Contains(r.stdout, ip) {
			t.Fatalf("ping %s from net1: %+v", name, r)
		}
	}
	id := strings.TrimSpace(mustMoss(t, "inspect", "-f", "{{.Id}}", "ct1"))
	if out := mustMoss(t, "run", "--rm", "--network", "net1", image, "nslookup", id[:12]); !strings.Contains(out, ip) {
		t.Fatalf("nslookup of the short ID: %s", out)
	}
	// The default bridge network resolves no container names, as docker's.
	if r := moss(t, "run", "--rm", image, "nslookup", "ct1"); r.code == 0 && strings.Contains(r.stdout, ip) {
		t.Fatalf("the default network resolved ct1: %+v", r)
	}
	in := mustMoss(t, "network", "inspect", "net1")
	if !strings.Contains(in, id) || !strings.Contains(in, `"10.77.0.0/24"`) {
		t.Fatalf("network inspect net1 lacks ct1 or the subnet:\n%s", in)
	}
}

// Commands bounded by timeout(1) run with --init: busybox's timeout execs
// the command, which as PID 1 would ignore the signal (wget -T crashes).

// hostListener serves "moss-host" on the host's first global address; a
// container reaches it through the rootless network's NAT.
func hostListener(t *testing.T) string {
	t.Helper()
	var ip string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			ip = n.IP.String()
			break
		}
	}
	if ip == "" {
		t.Fatal("the host has no global IPv4 address to test outbound traffic with")
	}
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "moss-host\n") })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// TestNetworkIsolation: networks cannot reach each other; an internal
// network has no way out, others reach the host (acceptance 2).
func TestNetworkIsolation(t *testing.T) {
	network(t, "--subnet", "10.78.0.0/24", "isoa")
	network(t, "isob")
	network(t, "--internal", "isoint")
	mustMoss(t, "run", "-d", "--name", "isoct", "--network", "isoa", image, "httpd", "-f", "-p", "80", "-h", "/etc")
	rmf(t, "isoct")
	ip := ipOf(t, "isoct", "isoa")
	if r := moss(t, "run", "--rm", "--network", "isoa", "--init", image, "timeout", "5", "wget", "-qO-", "http://"+ip+"/hostname"); r.code != 0 {
		t.Fatalf("same network: %+v", r)
	}
	if r := moss(t, "run", "--rm", "--network", "isob", "--init", image, "timeout", "5", "wget", "-qO-", "http://"+ip+"/hostname"); r.code == 0 {
		t.Fatalf("a container on isob reached isoct on isoa: %+v", r)
	}
	if r := moss(t, "run", "--rm", "--network", "isob", image, "ping", "-c1", "-W2", ip); r.code == 0 {
		t.Fatalf("a container on isob pinged isoct on isoa: %+v", r)
	}
	addr := hostListener(t)
	if r := moss(t, "run", "--rm", "--network", "isob", "--init", image, "timeout", "5", "wget", "-qO-", "http://"+addr+"/"); r.code != 0 || r.stdout != "moss-host\n" {
		t.Fatalf("outbound from isob to the host: %+v", r)
	}
	if r := moss(t, "run", "--rm", "--network", "isoint", "--init", image, "timeout", "5", "wget", "-qO-", "http://"+addr+"/"); r.code == 0 {
		t.Fatalf("a container on an --internal network got out: %+v", r)
	}
	if out := mustMoss(t, "run", "--rm", "--network", "isoint", image, "ip", "route"); strings.Contains(out, "default") {
		t.Fatalf("an --internal network has a default route:\n%s", out)
	}
}

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func portFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// TestPublishPort: -p serves from the host's loopback, is released by
// rm -f, and a taken port fails the start clearly (acceptance 3).
func TestPublishPort(t *testing.T) {
	const addr = "127.0.0.1:18080"
	if !portFree(addr) {
		t.Fatalf("%s is taken before the test", addr)
	}
	mustMoss(t, "run", "-d", "--name", "pub", "-p", addr+":80", image, "sh", "-c", "mkdir /www && echo moss-page > /www/index.html && exec httpd -f -p 80 -h /www")
	rmf(t, "pub")
	var body string
	waitFor(t, "the published page", 10*time.Second, func() bool {
		body, _ = httpGet("http://" + addr + "/")
		return body == "moss-page\n"
	})
	if out := mustMoss(t, "port", "pub"); strings.TrimSpace(out) != "80/tcp -> "+addr {
		t.Fatalf("moss port: %q", out)
	}
	if ps := mustMoss(t, "ps"); !strings.Contains(ps, addr+"->80/tcp") {
		t.Fatalf("ps does not show the port:\n%s", ps)
	}
	// The port is taken: the next container does not start, and says why.
	r := moss(t, "run", "-d", "--name", "pub2", "-p", addr+":80", image, "sleep", "100")
	rmf(t, "pub2")
	if r.code != 125 || !strings.Contains(r.stderr, "18080") || !strings.Contains(r.stderr, "already allocated") {
		t.Fatalf("second -p %s: %+v", addr, r)
	}
	if st := strings.TrimSpace(mustMoss(t, "inspect", "-f", "{{.State.Status}}", "pub2")); st == "running" {
		t.Fatal("the container whose port was taken runs")
	}
	if body, _ := httpGet("http://" + addr + "/"); body != "moss-page\n" {
		t.Fatalf("the first container's port broke: %q", body)
	}
	mustMoss(t, "rm", "-f", "pub")
	waitFor(t, "the port to be free", 5*time.Second, func() bool { return portFree(addr) })
	// -P publishes the image's exposed ports on free host ports.
	mustMoss(t, "run", "-d", "--name", "puball", "--expose", "80", "-P", image, "httpd", "-f", "-p", "80", "-h", "/etc")
	rmf(t, "puball")
	out := strings.TrimSpace(mustMoss(t, "port", "puball", "80"))
	_, hp, err := net.SplitHostPort(strings.TrimPrefix(strings.Fields(out)[0], "0.0.0.0"))
	if err != nil {
		hp = out[strings.LastIndex(out, ":")+1:]
	}
	waitFor(t, "the -P page", 10*time.Second, func() bool {
		body, _ := httpGet("http://127.0.0.1:" + hp + "/hostname")
		return body != ""
	})
}

// TestNetworkModes: container:, host and none (acceptance 4).
func TestNetworkModes(t *testing.T) {
	mustMoss(t, "run", "-d", "--name", "nsct", image, "httpd", "-f", "-p", "8081", "-h", "/etc")
	rmf(t, "nsct")
	want := mustMoss(t, "exec", "nsct", "ip", "-o", "-4", "addr")
	got := mustMoss(t, "run", "--rm", "--network", "container:nsct", image, "ip", "-o", "-4", "addr")
	if got != want {
		t.Fatalf("container:nsct sees\n%s\nnsct has\n%s", got, want)
	}
	waitFor(t, "nsct's service on its localhost", 10*time.Second, func() bool {
		return moss(t, "run", "--rm", "--network", "container:nsct", image, "wget", "-qO-", "http://127.0.0.1:8081/hostname").code == 0
	})
	ifs, _ := net.Interfaces()
	out := mustMoss(t, "run", "--rm", "--network", "host", image, "ip", "-o", "link")
	for _, i := range ifs {
		if !strings.Contains(out, ": "+i.Name+":") && !strings.Contains(out, ": "+i.Name+"@") {
			t.Fatalf("--network host lacks the host's %s:\n%s", i.Name, out)
		}
	}
	out = mustMoss(t, "run", "--rm", "--network", "none", image, "ip", "-o", "link")
	if n := strings.Count(strings.TrimSpace(out), "\n") + 1; n != 1 || !strings.Contains(out, ": lo:") {
		t.Fatalf("--network none has more than lo:\n%s", out)
	}
}

// plugin is one entry of /moss/v1/plugins.
type plugin struct {
	Name, Kind, Status, Error string
	Pid                       int
}

func plugins(t *testing.T) map[string]plugin {
	t.Helper()
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socketPath())
	}}}
	resp, err := c.Get("http://moss/moss/v1/plugins")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []plugin
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := map[string]plugin{}
	for _, p := range list {
		out[p.Name] = p
	}
	return out
}

// TestBridgePluginKilled: the agent restarts a killed bridge plugin and
// running containers keep their network (acceptance 5).
func TestBridgePluginKilled(t *testing.T) {
	network(t, "killnet")
	mustMoss(t, "run", "-d", "--name", "ka", "--network", "killnet", image, "httpd", "-f", "-p", "80", "-h", "/etc")
	mustMoss(t, "run", "-d", "--name", "kb", "--network", "killnet", image, "sleep", "1000")
	rmf(t, "ka", "kb")
	if r := moss(t, "exec", "kb", "timeout", "5", "wget", "-qO-", "http://ka/hostname"); r.code != 0 {
		t.Fatalf("before the kill: %+v", r)
	}
	old := plugins(t)["bridge"]
	if old.Status != "running" || old.Pid <= 0 {
		t.Fatalf("bridge plugin before the kill: %+v", old)
	}
	if err := syscall.Kill(old.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bridge plugin to be restarted", 15*time.Second, func() bool {
		p := plugins(t)["bridge"]
		return p.Status == "running" && p.Pid > 0 && p.Pid != old.Pid
	})
	ip := ipOf(t, "ka", "killnet")
	if r := moss(t, "exec", "kb", "timeout", "5", "wget", "-qO-", "http://"+ip+"/hostname"); r.code != 0 {
		t.Fatalf("existing containers lost their network: %+v", r)
	}
	if r := moss(t, "exec", "kb", "timeout", "5", "wget", "-qO-", "http://ka/hostname"); r.code != 0 {
		t.Fatalf("names after the restart: %+v", r)
	}
	if r := moss(t, "run", "--rm", "--network", "killnet", "--init", image, "timeout", "5", "wget", "-qO-", "http://ka/hostname"); r.code != 0 {
		t.Fatalf("a new container after the restart: %+v", r)
	}
	if agentPID() <= 0 || syscall.Kill(agentPID(), 0) != nil {
		t.Fatal("the agent is gone")
	}
}

// inHolderNetns runs a command in the rootless network namespace.
func inHolderNetns(t *testing.T, args ...string) string {
	t.Helper()
	nsArgs := []string{"-t", strconv.Itoa(holderChild()), "-U", "-m", "--preserve-credentials", "nsenter", "--net=" + filepath.Join(runDir, "holder", "netns")}
	r := runCmd(t, "", "nsenter", append(nsArgs, args...)...)
	if r.code != 0 {
		t.Fatalf("nsenter %v: %+v", args, r)
	}
	return r.stdout
}

func holderPorts(t *testing.T) string {
	t.Helper()
	r := runCmd(t, "", "curl", "-s", "--unix-socket", filepath.Join(runDir, "holder", "api.sock"), "http://rootlesskit/v1/ports")
	if r.code != 0 {
		t.Fatalf("rootlesskit ports: %+v", r)
	}
	return strings.TrimSpace(r.stdout)
}

// TestNetworkCycles: create/start/rm cycles leave no veth, no port forward
// and no address behind (acceptance 6).
func TestNetworkCycles(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 50
	}
	// 13 addresses: a leak of one per cycle runs out within the first 14.
	network(t, "--subnet", "10.79.0.0/28", "cycles")
	links := func() int { return strings.Count(inHolderNetns(t, "ip", "-o", "link"), "\n") }
	before, ports := links(), holderPorts(t)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		args := []string{"run", "--rm", "--network", "cycles"}
		if i%10 == 0 {
			args = append(args, "-p", "127.0.0.1::80")
		}
		if r := moss(t, append(args, image, "true")...); r.code != 0 {
			t.Fatalf("cycle %d: %+v", i, r)
		}
	}
	t.Logf("%d cycles in %v", n, time.Since(t0))
	waitFor(t, "no veth left", 10*time.Second, func() bool { return links() == before })
	if now := holderPorts(t); now != ports {
		t.Fatalf("port forwards left: %s (before: %s)", now, ports)
	}
	// Every address is free again: 13 containers fit at once.
	for i := 0; i < 13; i++ {
		name := fmt.Sprintf("cyclelast%d", i)
		mustMoss(t, "run", "-d", "--name", name, "--network", "cycles", image, "sleep", "100")
		rmf(t, name)
	}
	if in := mustMoss(t, "network", "inspect", "-f", "{{len .Containers}}", "cycles"); strings.TrimSpace(in) != "13" {
		t.Fatalf("network inspect counts %s containers, want 13", in)
	}
	// The 13 containers' namespaces, and at most the spare and the warm
	// container's, made in advance.
	if entries, _ := os.ReadDir(filepath.Join(runDir, "netns")); len(entries) < 13 || len(entries) > 15 {
		t.Fatalf("network namespaces: %d, want the 13 of the running containers (and a spare, and a warm container's)", len(entries))
	}
}

// TestDockerCLINetworks: the docker CLI does acceptance 1-4.
func TestDockerCLINetworks(t *testing.T) {
	if r := docker(t, "network", "create", "--subnet", "10.76.0.0/24", "dnet"); r.code != 0 {
		t.Fatalf("docker network create: %+v", r)
	}
	t.Cleanup(func() { _ = exec.Command(mossBin, "network", "rm", "dnet").Run() })
	if r := docker(t, "network", "ls"); !strings.Contains(r.stdout, "dnet") || !strings.Contains(r.stdout, "bridge") {
		t.Fatalf("docker network ls: %+v", r)
	}
	if r := docker(t, "run", "-d", "--name", "dct", "--network", "dnet", "--network-alias", "dalias", "-p", "127.0.0.1:18081:80", image, "httpd", "-f", "-p", "80", "-h", "/etc"); r.code != 0 {
		t.Fatalf("docker run: %+v", r)
	}
	rmf(t, "dct")
	if r := docker(t, "run", "--rm", "--network", "dnet", image, "ping", "-c1", "-W5", "dalias"); r.code != 0 {
		t.Fatalf("docker run ping dalias: %+v", r)
	}
	waitFor(t, "the page docker published", 10*time.Second, func() bool {
		body, _ := httpGet("http://127.0.0.1:18081/hostname")
		return body != ""
	})
	if r := docker(t, "port", "dct"); !strings.Contains(r.stdout, "127.0.0.1:18081") {
		t.Fatalf("docker port: %+v", r)
	}
	if r := docker(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "dnet"); strings.TrimSpace(r.stdout) != "10.76.0.0/24" {
		t.Fatalf("docker network inspect: %+v", r)
	}
	if r := docker(t, "run", "--rm", "--network", "container:dct", image, "wget", "-qO-", "http://127.0.0.1/hostname"); r.code != 0 {
		t.Fatalf("docker run --network container:dct: %+v", r)
	}
	if r := docker(t, "run", "--rm", "--network", "none", image, "ip", "-o", "link"); strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("docker run --network none: %+v", r)
	}
	if r := docker(t, "network", "rm", "dnet"); r.code == 0 {
		t.Fatalf("docker network rm of a network in use succeeded: %+v", r)
	}
	docker(t, "rm", "-f", "dct")
	if r := docker(t, "network", "rm", "dnet"); r.code != 0 {
		t.Fatalf("docker network rm: %+v", r)
	}
}

// TestNetworkBadInput: clear errors, nothing else changed (acceptance 9).
func TestNetworkBadInput(t *testing.T) {
	network(t, "--subnet", "10.75.0.0/24", "badnet")
	before := mustMoss(t, "network", "ls")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "--subnet", "10.75.0.128/25", "overlap"}, "overlap"},
		{[]string{"network", "create", "--subnet", "10.75.0.0/33", "badcidr"}, "10.75.0.0/33"},
		{[]string{"network", "create", "--subnet", "10.74.0.0/24", "--gateway", "10.1.1.1", "badgw"}, "10.1.1.1"},
		{[]string{"network", "create", "badnet"}, "already exists"},
		{[]string{"network", "create", "-d", "nosuchdriver", "x1"}, "nosuchdriver"},
		{[]string{"network", "create", "-d", "host", "x2"}, "host"},
		{[]string{"network", "rm", "bridge"}, "pre-defined"},
		{[]string{"network", "rm", "nosuchnet"}, "not found"},
		{[]string{"run", "--rm", "--network", "nosuchnet", image, "true"}, "nosuchnet"},
		{[]string{"run", "--rm", "-p", "70000:80", image, "true"}, "70000"},
		{[]string{"run", "--rm", "-p", "80:0", image, "true"}, "0"},
		{[]string{"run", "--rm", "--network", "badnet", "--ip", "10.9.9.9", image, "true"}, "10.9.9.9"},
		{[]string{"run", "--rm", "--ip", "10.88.0.9", image, "true"}, "user defined networks"},
	} {
		r := moss(t, c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("moss %s: want a failure naming %q, got %+v", strings.Join(c.args, " "), c.want, r)
		}
	}
	mustMoss(t, "run", "-d", "--name", "badnetct", "--network", "badnet", "--ip", "10.75.0.9", image, "sleep", "100")
	rmf(t, "badnetct")
	if r := moss(t, "run", "--rm", "--network", "badnet", "--ip", "10.75.0.9", image, "true"); r.code == 0 {
		t.Errorf("a second container got the taken address 10.75.0.9: %+v", r)
	}
	if r := moss(t, "network", "rm", "badnet"); r.code == 0 || !strings.Contains(r.stderr, "active endpoints") {
		t.Errorf("network rm of a network in use: %+v", r)
	}
	if after := mustMoss(t, "network", "ls"); after != before {
		t.Fatalf("network ls changed:\n%s\nwas:\n%s", after, before)
	}
	if ip := ipOf(t, "badnetct", "badnet"); ip != "10.75.0.9" {
		t.Fatalf("badnetct's address is %s", ip)
	}
}

// TestBadPlugins: executables in the plugin directory that are not Moss
// plugins, or speak another protocol version, are listed as failed with
// the reason; the agent and the built-in drivers carry on (acceptance 9).
func TestBadPlugins(t *testing.T) {
	dir := filepath.Join(dataDir, "plugins")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	scripts := map[string]string{
		"notaplugin": "#!/bin/sh\necho hello\n",
		"oldversion": "#!/bin/sh\necho '1|2|unix|/nonexistent.sock|grpc'\nsleep 30\n",
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for name := range scripts {
			os.Remove(filepath.Join(dir, name))
		}
		restartAgent(t)
	})
	restartAgent(t)
	var ps map[string]plugin
	deadline := time.Now().Add(20 * time.Second)
	for {
		ps = plugins(t)
		if ps["notaplugin"].Status == "failed" && ps["oldversion"].Status == "failed" && ps["bridge"].Status == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugins after 20 s: %+v", ps)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if e := ps["oldversion"].Error; !strings.Contains(e, "version") {
		t.Errorf("oldversion's error does not name the version: %q", e)
	}
	if e := ps["notaplugin"].Error; e == "" {
		t.Error("notaplugin failed without a reason")
	}
	out := mustMoss(t, "plugin", "ls")
	for _, want := range []string{"notaplugin", "oldversion", "failed", "bridge"} {
		if !strings.Contains(out, want) {
			t.Errorf("plugin ls lacks %q:\n%s", want, out)
		}
	}
	if out := mustMoss(t, "run", "--rm", image, "echo", "still works"); out != "still works\n" {
		t.Fatalf("run after bad plugins: %q", out)
	}
}

// TestCNIPlugin: the CNI adapter of contrib/cni, a third-party plugin
// loaded from the plugin directory, runs a container on a CNI bridge
// network with a published port (acceptance 7). make check builds it
// (MOSS_IT_CNI names the executable).
func TestCNIPlugin(t *testing.T) {
	bin := os.Getenv("MOSS_IT_CNI")
	if bin == "" {
		t.Skip("MOSS_IT_CNI is not set (hack/check.sh builds contrib/cni and sets it)")
	}
	dir := filepath.Join(dataDir, "plugins")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	copyExecutable(t, bin, filepath.Join(dir, "moss-cni"))
	t.Cleanup(func() {
		_ = exec.Command(mossBin, "rm", "-f", "cnict").Run()
		_ = exec.Command(mossBin, "network", "rm", "cninet").Run()
		os.Remove(filepath.Join(dir, "moss-cni"))
		restartAgent(t)
	})
	restartAgent(t)
	waitFor(t, "the cni plugin", 15*time.Second, func() bool { return plugins(t)["cni"].Status == "running" })
	if out := mustMoss(t, "plugin", "ls"); !strings.Contains(out, "cni") || !strings.Contains(out, filepath.Join(dir, "moss-cni")) {
		t.Fatalf("plugin ls:\n%s", out)
	}
	mustMoss(t, "network", "create", "-d", "cni", "--subnet", "10.73.0.0/24", "cninet")
	const addr = "127.0.0.1:18082"
	mustMoss(t, "run", "-d", "--name", "cnict", "--network", "cninet", "-p", addr+":80", image, "httpd", "-f", "-p", "80", "-h", "/etc")
	ip := ipOf(t, "cnict", "cninet")
	if !strings.HasPrefix(ip, "10.73.0.") {
		t.Fatalf("cnict's address on the CNI network: %q", ip)
	}
	waitFor(t, "the page through the published port", 10*time.Second, func() bool {
		body, _ := httpGet("http://" + addr + "/hostname")
		return body != ""
	})
	if r := moss(t, "run", "--rm", "--network", "cninet", "--init", image, "timeout", "5", "wget", "-qO-", "http://"+ip+"/hostname"); r.code != 0 {
		t.Fatalf("container to container on the CNI network: %+v", r)
	}
	mustMoss(t, "rm", "-f", "cnict")
	waitFor(t, "the port to be free", 5*time.Second, func() bool { return portFree(addr) })
	mustMoss(t, "network", "rm", "cninet")
}

// TestNetworkConnectAndAgentRestart: network connect gives a running
// container an interface and a name on a second network; after the agent
// is killed and started again, the plugins are started again and the
// containers keep their networks.
func TestNetworkConnectAndAgentRestart(t *testing.T) {
	network(t, "conn1")
	network(t, "conn2")
	mustMoss(t, "run", "-d", "--name", "cona", "--network", "conn1", image, "httpd", "-f", "-p", "80", "-h", "/etc")
	mustMoss(t, "run", "-d", "--name", "conb", "--network", "conn2", image, "sleep", "1000")
	rmf(t, "cona", "conb")
	if r := moss(t, "exec", "conb", "timeout", "3", "wget", "-qO-", "http://cona/hostname"); r.code == 0 {
		t.Fatalf("conb reached cona before being connected: %+v", r)
	}
	mustMoss(t, "network", "connect", "--alias", "bee", "conn1", "conb")
	if out := mustMoss(t, "exec", "conb", "ip", "-o", "link"); !strings.Contains(out, "eth1") {
		t.Fatalf("no eth1 after network connect:\n%s", out)
	}
	if r := moss(t, "exec", "conb", "timeout", "5", "wget", "-qO-", "http://cona/hostname"); r.code != 0 {
		t.Fatalf("after network connect: %+v", r)
	}
	if r := moss(t, "exec", "cona", "ping", "-c1", "-W3", "bee"); r.code != 0 {
		t.Fatalf("the alias given by network connect: %+v", r)
	}
	old := plugins(t)["bridge"].Pid
	a := agentPID()
	if err := syscall.Kill(a, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(a, 5*time.Second)
	mustMoss(t, "version")
	waitFor(t, "the bridge plugin of the new agent", 15*time.Second, func() bool {
		p := plugins(t)["bridge"]
		return p.Status == "running" && p.Pid != old
	})
	if st := procState(old); st != "" && st != "Z" {
		t.Errorf("the old bridge plugin %d still runs beside the new one (state %s)", old, st)
	}
	if r := moss(t, "exec", "conb", "timeout", "5", "wget", "-qO-", "http://cona/hostname"); r.code != 0 {
		t.Fatalf("after the agent restart: %+v", r)
	}
	mustMoss(t, "network", "disconnect", "conn1", "conb")
	if out := mustMoss(t, "exec", "conb", "ip", "-o", "link"); strings.Contains(out, "eth1") {
		t.Fatalf("eth1 left after network disconnect:\n%s", out)
	}
	if r := moss(t, "run", "--rm", "--network", "conn1", "--init", image, "timeout", "5", "wget", "-qO-", "http://cona/hostname"); r.code != 0 {
		t.Fatalf("a new container after the agent restart: %+v", r)
	}
}

// procState is the state letter of a process (R, S, Z…), "" when gone.
func procState(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

// TestNetworkDNSOptions: --dns, --dns-search, --dns-option, --add-host
// (host-gateway too) and -h in the container's files; a network's own DNS
// server otherwise.
func TestNetworkDNSOptions(t *testing.T) {
	network(t, "--subnet", "10.72.0.0/24", "dnsopt")
	out := mustMoss(t, "run", "--rm", "--network", "dnsopt", image, "cat", "/etc/resolv.conf")
	if !strings.Contains(out, "nameserver 10.72.0.1") {
		t.Fatalf("resolv.conf on dnsopt:\n%s", out)
	}
	out = mustMoss(t, "run", "--rm", "--network", "dnsopt", "--dns", "10.9.9.9", "--dns-search", "example.org",
		"--dns-option", "ndots:2", "--add-host", "bar:1.2.3.4", "--add-host", "gw:host-gateway", "-h", "myhost",
		image, "sh", "-c", "cat /etc/resolv.conf /etc/hosts; hostname")
	for _, want := range []string{"nameserver 10.9.9.9", "search example.org", "options ndots:2", "1.2.3.4\tbar", "\tgw\n", "\tmyhost\n", "myhost\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("the container's files lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "nameserver 10.72.0.1") {
		t.Errorf("--dns did not replace the network's server:\n%s", out)
	}
	if strings.Contains(out, "host-gateway") {
		t.Errorf("host-gateway was not resolved:\n%s", out)
	}
	host, _ := os.ReadFile("/etc/resolv.conf")
	if out := mustMoss(t, "run", "--rm", "--network", "host", image, "cat", "/etc/resolv.conf"); out != string(host) {
		t.Errorf("--network host: resolv.conf\n%s\nis not the host's\n%s", out, host)
	}
}

// TestMacAddress: --mac-address on a user network; a bad one is refused.
func TestMacAddress(t *testing.T) {
	network(t, "macnet")
	out := mustMoss(t, "run", "--rm", "--network", "macnet", "--mac-address", "92:d0:c6:0a:29:33", image, "cat", "/sys/class/net/eth0/address")
	if strings.TrimSpace(out) != "92:d0:c6:0a:29:33" {
		t.Fatalf("eth0's address: %q", out)
	}
	if r := moss(t, "run", "--rm", "--mac-address", "nope", image, "true"); r.code == 0 || !strings.Contains(r.stderr, "nope") {
		t.Fatalf("--mac-address nope: %+v", r)
	}
}
