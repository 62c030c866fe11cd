package integration

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const registryBin = "/usr/bin/docker-registry"

// registry is a docker-registry (distribution v2) on loopback, started
// by the test on a free port.
type registry struct {
	addr string // 127.0.0.1:PORT
}

// startRegistry starts a registry storing into a temporary directory;
// with user set, it wants that user and password (htpasswd, bcrypt).
func startRegistry(t *testing.T, user, password string) *registry {
	t.Helper()
	if _, err := os.Stat(registryBin); err != nil {
		t.Skip("docker-registry not installed (Debian package docker-registry)")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: moss-test\n    path: %s\n", htpasswd)
	}
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logb bytes.Buffer
	cmd := exec.Command(registryBin, "serve", cfgFile)
	cmd.Stdout, cmd.Stderr = &logb, &logb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("registry %s log:\n%s", addr, tailString(logb.String(), 30))
		}
	})
	waitFor(t, "the registry at "+addr, 15*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
	})
	return &registry{addr: addr}
}

// layerTar is a layer: a tar of the files (path → content) and its digest.
func layerTar(t *testing.T, files map[string]string) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b.Bytes())
	return b.Bytes(), hex.EncodeToString(sum[:])
}

// writeArchive writes a docker-archive holding one image of the given
// layers, tagged tag, as docker save writes it.
func writeArchive(t *testing.T, path, tag string, layers ...[]byte) {
	t.Helper()
	var diffIDs, layerPaths []string
	var history []map[string]string
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range layers {
		sum := sha256.Sum256(l)
		h := hex.EncodeToString(sum[:])
		diffIDs = append(diffIDs, "sha256:"+h)
		layerPaths = append(layerPaths, h+"/layer.tar")
		history = append(history, map[string]string{"created": "2024-01-01T00:00:00Z", "created_by": fmt.Sprintf("layer %d", i+1)})
		add(h+"/layer.tar", l)
	}
	cfg, _ := json.Marshal(map[string]interface{}{
		"architecture": runtime.GOARCH, "os": "linux", "created": "2024-01-01T00:00:00Z",
		"config":  map[string]interface{}{"Cmd": []string{"/bin/sh"}, "Labels": map[string]string{"test": t.Name()}},
		"rootfs":  map[string]interface{}{"type": "layers", "diff_ids": diffIDs},
		"history": history,
	})
	cs := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cs[:]) + ".json"
	add(cfgName, cfg)
	man, _ := json.Marshal([]map[string]interface{}{{"Config": cfgName, "RepoTags": []string{tag}, "Layers": layerPaths}})
	add("manifest.json", man)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// randomLayer is a layer of one file of random content, so that every
// run pushes layers the registry has never seen.
func randomLayer(t *testing.T, name string) []byte {
	t.Helper()
	b := make([]byte, 64<<10)
	_, _ = rand.Read(b)
	l, _ := layerTar(t, map[string]string{name: hex.EncodeToString(b)})
	return l
}

func imageID(t *testing.T, ref string) string {
	t.Helper()
	return strings.TrimSpace(mustMoss(t, "image", "inspect", "-f", "{{.Id}}", ref))
}

// storeState lists the image IDs and names, to check a failed operation
// changed nothing.
func storeState(t *testing.T) string {
	t.Helper()
	return mustMoss(t, "images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
}

var pushedDigest = regexp.MustCompile(`(?m)^(\S+): digest: (sha256:[0-9a-f]{64}) size: [0-9]+$`)

// loadAndPush loads an image of layers tagged ref and pushes it; it
// returns the image ID and the pushed manifest digest.
func loadAndPush(t *testing.T, ref string, layers ...[]byte) (string, string) {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "image.tar")
	writeArchive(t, archive, ref, layers...)
	mustMoss(t, "load", "-i", archive)
	id := imageID(t, ref)
	out := mustMoss(t, "push", ref)
	m := pushedDigest.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "The push refers to repository") || strings.Count(out, ": Pushed")+strings.Count(out, ": Layer already exists") != len(layers) {
		t.Fatalf("push %s:\n%s", ref, out)
	}
	return id, m[2]
}

// TestRegistryPushPull: an image of two layers pushed to a real registry,
// removed, and pulled back by tag and by digest keeps its ID; a second
// image sharing a layer stores that layer once; --all-tags and
// --platform (acceptance 1).
func TestRegistryPushPull(t *testing.T) {
	reg := startRegistry(t, "", "")
	repo := reg.addr + "/it/twolayer"
	shared := randomLayer(t, "shared.txt")
	id, dg := loadAndPush(t, repo+":v1", shared, randomLayer(t, "one.txt"))
	t.Cleanup(func() { _ = exec.Command(mossBin, "rmi", "-f", repo+":v1", repo+":v2", repo+"@"+dg).Run() })
	mustMoss(t, "rmi", repo+":v1")
	if r := moss(t, "image", "inspect", id); r.code == 0 {
		t.Fatalf("image %s still here after rmi", id)
	}

	out := mustMoss(t, "pull", repo+":v1")
	for _, want := range []string{"v1: Pulling from it/twolayer", "Pull complete", "Digest: " + dg, "Status: Downloaded newer image for " + repo + ":v1", repo + ":v1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("pull by tag: output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Downloading") {
		t.Errorf("pull without a terminal shows byte counts:\n%s", out)
	}
	if got := imageID(t, repo+":v1"); got != id {
		t.Fatalf("pulled by tag: ID %s, pushed %s", got, id)
	}
	if layers := mustMoss(t, "image", "inspect", "-f", "{{len .RootFS.Layers}}", repo+":v1"); strings.TrimSpace(layers) != "2" {
		t.Fatalf("pulled image has %s layers", layers)
	}
	if digests := mustMoss(t, "image", "inspect", "-f", "{{json .RepoDigests}}", repo+":v1"); !strings.Contains(digests, repo+"@"+dg) {
		t.Errorf("RepoDigests lack %s:\n%s", dg, digests)
	}
	if out := mustMoss(t, "pull", repo+":v1"); !strings.Contains(out, "Status: Image is up to date for "+repo+":v1") {
		t.Errorf("second pull:\n%s", out)
	}

	mustMoss(t, "rmi", repo+":v1")
	out = mustMoss(t, "pull", repo+"@"+dg)
	if !strings.Contains(out, "Digest: "+dg) {
		t.Errorf("pull by digest:\n%s", out)
	}
	if got := imageID(t, repo+"@"+dg); got != id {
		t.Fatalf("pulled by digest: ID %s, pushed %s", got, id)
	}
	// Gone by tag, there by digest: an untagged image.
	if r := moss(t, "image", "inspect", repo+":v1"); r.code == 0 {
		t.Errorf("a pull by digest tagged the image")
	}
	mustMoss(t, "rmi", repo+"@"+dg)

	// A second tag sharing the first layer: that layer is not fetched again.
	mustMoss(t, "pull", "-q", repo+":v1")
	id2, _ := loadAndPush(t, repo+":v2", shared, randomLayer(t, "two.txt"))
	mustMoss(t, "rmi", repo+":v2")
	out = mustMoss(t, "pull", repo+":v2")
	if strings.Count(out, "Already exists") != 1 || strings.Count(out, "Pull complete") != 1 {
		t.Errorf("pull of an image sharing a stored layer:\n%s", out)
	}
	if got := imageID(t, repo+":v2"); got != id2 {
		t.Fatalf("v2: ID %s, pushed %s", got, id2)
	}

	// create (and run) pull a missing image first, as docker's.
	mustMoss(t, "rmi", repo+":v2")
	r := moss(t, "create", "--name", "pulledctr", repo+":v2", "/none")
	if r.code != 0 || !strings.Contains(r.stderr, "Unable to find image '"+repo+":v2' locally") {
		t.Fatalf("create of a missing image: %+v", r)
	}
	mustMoss(t, "rm", "pulledctr")

	// --all-tags pulls v1 and v2.
	mustMoss(t, "rmi", repo+":v1", repo+":v2")
	if out := mustMoss(t, "pull", "--all-tags", repo); !strings.Contains(out, "v1: Pulling from") || !strings.Contains(out, "v2: Pulling from") {
		t.Errorf("pull --all-tags:\n%s", out)
	}
	if imageID(t, repo+":v1") != id || imageID(t, repo+":v2") != id2 {
		t.Fatal("pull --all-tags: wrong images")
	}
	if out := mustMoss(t, "pull", "-q", repo+":v1"); out != repo+":v1\n" {
		t.Errorf("pull -q printed %q", out)
	}

	// A platform the image is not for.
	other := "linux/arm64"
	if runtime.GOARCH == "arm64" {
		other = "linux/amd64"
	}
	before := storeState(t)
	if r := moss(t, "pull", "--platform", other, repo+":v1"); r.code == 0 || !strings.Contains(r.stderr, "does not match the specified platform") {
		t.Errorf("pull --platform %s: exit %d stderr %q", other, r.code, r.stderr)
	}
	if after := storeState(t); after != before {
		t.Errorf("a refused pull changed the store:\n%s\nthen:\n%s", before, after)
	}
	if r := moss(t, "pull", "--platform", "linux/"+runtime.GOARCH, repo+":v1"); r.code != 0 {
		t.Errorf("pull --platform linux/%s: exit %d stderr %q", runtime.GOARCH, r.code, r.stderr)
	}

	// push --all-tags pushes both tags again; the registry has every layer.
	out = mustMoss(t, "push", "--all-tags", repo)
	if len(pushedDigest.FindAllString(out, -1)) != 2 || !strings.Contains(out, "Layer already exists") {
		t.Errorf("push --all-tags:\n%s", out)
	}
}

// TestRegistryDockerCLI: docker pull, push and login against the Moss
// socket (acceptance 5).
func TestRegistryDockerCLI(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	reg := startRegistry(t, "", "")
	ref := reg.addr + "/it/dockercli:1"
	archive := filepath.Join(t.TempDir(), "image.tar")
	writeArchive(t, archive, ref, randomLayer(t, "a.txt"), randomLayer(t, "b.txt"))
	mustMoss(t, "load", "-i", archive)
	id := imageID(t, ref)
	t.Cleanup(func() { _ = exec.Command(mossBin, "rmi", "-f", ref).Run() })
	r := docker(t, "push", ref)
	if r.code != 0 || !pushedDigest.MatchString(r.stdout) {
		t.Fatalf("docker push: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustMoss(t, "rmi", ref)
	r = docker(t, "pull", ref)
	if r.code != 0 || !strings.Contains(r.stdout, "Status: Downloaded newer image for "+ref) || !strings.Contains(r.stdout, "Pull complete") {
		t.Fatalf("docker pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := imageID(t, ref); got != id {
		t.Fatalf("docker pull: ID %s, pushed %s", got, id)
	}
	if r := docker(t, "pull", reg.addr+"/it/nosuch:1"); r.code == 0 || !containsAny(r.stderr, []string{"not found", "unknown"}) {
		t.Errorf("docker pull of a missing image: exit %d stderr %q", r.code, r.stderr)
	}
	if r := docker(t, "pull", "127.0.0.1:1/it/x:1"); r.code == 0 || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("docker pull from an unreachable registry: exit %d stderr %q", r.code, r.stderr)
	}

	// With credentials.
	auth := startRegistry(t, "dockeruser", "dockerpass")
	aref := auth.addr + "/it/dockercli:1"
	mustMoss(t, "tag", ref, aref)
	t.Cleanup(func() {
		_ = exec.Command(mossBin, "rmi", "-f", aref).Run()
		_ = runEnv(t, []string{"DOCKER_HOST=unix://" + socketPath()}, "", "docker", "logout", auth.addr)
	})
	if r := docker(t, "push", aref); r.code == 0 || !strings.Contains(strings.ToLower(r.stdout+r.stderr), "unauthorized") {
		t.Errorf("docker push without login: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runEnv(t, []string{"DOCKER_HOST=unix://" + socketPath()}, "wrong\n", "docker", "login", "-u", "dockeruser", "--password-stdin", auth.addr)
	if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
		t.Errorf("docker login with a wrong password: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runEnv(t, []string{"DOCKER_HOST=unix://" + socketPath()}, "dockerpass\n", "docker", "login", "-u", "dockeruser", "--password-stdin", auth.addr)
	if r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
		t.Fatalf("docker login: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := docker(t, "push", aref); r.code != 0 {
		t.Fatalf("docker push after login: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustMoss(t, "rmi", aref)
	if r := docker(t, "pull", aref); r.code != 0 {
		t.Fatalf("docker pull after login: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := imageID(t, aref); got != id {
		t.Fatalf("docker pull with credentials: ID %s, want %s", got, id)
	}
}

// TestRegistryLogin: moss login checks the credentials and saves them in
// the auth file; pull and push use them; wrong ones are refused with a
// clear error and leave the store and the file as they were; logout
// removes them (acceptance 6, wrong credentials).
func TestRegistryLogin(t *testing.T) {
	reg := startRegistry(t, "mossuser", "mosspass")
	ref := reg.addr + "/it/login:1"
	authFile := filepath.Join(t.TempDir(), "auth.json")
	env := []string{"REGISTRY_AUTH_FILE=" + authFile}
	mossEnv := func(stdin string, args ...string) result { return runEnv(t, env, stdin, mossBin, args...) }
	archive := filepath.Join(t.TempDir(), "image.tar")
	writeArchive(t, archive, ref, randomLayer(t, "a.txt"), randomLayer(t, "b.txt"))
	mustMoss(t, "load", "-i", archive)
	id := imageID(t, ref)
	t.Cleanup(func() { _ = exec.Command(mossBin, "rmi", "-f", ref).Run() })

	if r := mossEnv("", "push", ref); r.code == 0 || !strings.Contains(r.stderr, "unauthorized") {
		t.Errorf("push without login: exit %d stderr %q", r.code, r.stderr)
	}
	before := storeState(t)
	if r := mossEnv("", "pull", reg.addr+"/it/other:1"); r.code == 0 || !strings.Contains(r.stderr, "unauthorized") || !strings.Contains(r.stderr, reg.addr) {
		t.Errorf("pull without login: exit %d stderr %q", r.code, r.stderr)
	}
	r := mossEnv("", "login", "-u", "mossuser", "-p", "wrong", reg.addr)
	if r.code != 1 || !strings.Contains(r.stderr, "unauthorized") || !strings.Contains(r.stderr, "wrong user name or password") {
		t.Errorf("login with a wrong password: exit %d stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(authFile); err == nil {
		t.Errorf("a refused login wrote %s", authFile)
	}
	if after := storeState(t); after != before {
		t.Errorf("refused operations changed the store:\n%s\nthen:\n%s", before, after)
	}

	r = mossEnv("mosspass\n", "login", "-u", "mossuser", "--password-stdin", reg.addr)
	if r.code != 0 || r.stdout != "Login Succeeded\n" {
		t.Fatalf("login: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	var saved struct {
		Auths map[string]struct{ Auth string }
	}
	if err := json.Unmarshal([]byte(readFile(authFile)), &saved); err != nil || saved.Auths[reg.addr].Auth == "" {
		t.Fatalf("auth file after login: %v\n%s", err, readFile(authFile))
	}
	if r := mossEnv("", "login", reg.addr); r.code != 0 || !strings.Contains(r.stdout, "existing credentials") {
		t.Errorf("login with saved credentials: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := mossEnv("", "push", ref); r.code != 0 || !pushedDigest.MatchString(r.stdout) {
		t.Fatalf("push after login: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustMoss(t, "rmi", ref)
	if r := mossEnv("", "pull", ref); r.code != 0 {
		t.Fatalf("pull after login: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := imageID(t, ref); got != id {
		t.Fatalf("pulled with credentials: ID %s, want %s", got, id)
	}
	if r := mossEnv("", "logout", reg.addr); r.code != 0 || !strings.Contains(r.stdout, "Removing login credentials for "+reg.addr) {
		t.Errorf("logout: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := mossEnv("", "logout", reg.addr); r.code != 0 || !strings.Contains(r.stdout, "Not logged in") {
		t.Errorf("second logout: exit %d stdout %q", r.code, r.stdout)
	}
	if r := mossEnv("", "pull", ref); r.code == 0 || !strings.Contains(r.stderr, "unauthorized") {
		t.Errorf("pull after logout: exit %d stderr %q", r.code, r.stderr)
	}

	// Without REGISTRY_AUTH_FILE: the user's auth.json in $XDG_RUNTIME_DIR.
	r = runCmd(t, "mosspass\n", mossBin, "login", "-u", "mossuser", "--password-stdin", reg.addr)
	if r.code != 0 {
		t.Fatalf("login to the default auth file: exit %d stderr %q", r.code, r.stderr)
	}
	def := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "containers", "auth.json")
	if !strings.Contains(readFile(def), reg.addr) {
		t.Errorf("%s after login:\n%s", def, readFile(def))
	}
	mustMoss(t, "logout", reg.addr)
	if strings.Contains(readFile(def), reg.addr) {
		t.Errorf("%s after logout:\n%s", def, readFile(def))
	}
}

// TestPullBadInput: malformed references, an unreachable registry (fast,
// naming the address), a missing image and a short name without search
// registries fail with clear errors and leave the store unchanged
// (acceptance 6).
func TestPullBadInput(t *testing.T) {
	reg := startRegistry(t, "", "")
	before := storeState(t)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"pull", "Not/A Name"}, []string{"invalid reference format"}},
		{[]string{"pull", "127.0.0.1:5000/x::1"}, []string{"invalid reference format"}},
		{[]string{"pull", "http://127.0.0.1:5000/x"}, []string{"invalid reference format", "scheme"}},
		{[]string{"pull", "127.0.0.1:5000/x@sha256:abc"}, []string{"invalid reference format"}},
		{[]string{"pull", "127.0.0.1:1/x:1"}, []string{"127.0.0.1:1", "unreachable"}},
		{[]string{"push", "127.0.0.1:1/x:1"}, []string{"does not exist locally"}},
		{[]string{"pull", reg.addr + "/it/nosuch:1"}, []string{"not found", reg.addr}},
		{[]string{"pull", "busybox"}, []string{"short name \"busybox", "no search registries", "docker.io/library/busybox", "[registries] search"}},
		{[]string{"pull", "--platform", "linux", reg.addr + "/it/x:1"}, []string{"invalid platform"}},
	}
	for _, tc := range cases {
		t0 := time.Now()
		r := moss(t, tc.args...)
		took := time.Since(t0)
		if r.code == 0 {
			t.Errorf("%v: exit 0", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%v: stderr lacks %q: %q", tc.args, w, r.stderr)
			}
		}
		if took > 10*time.Second {
			t.Errorf("%v took %v", tc.args, took)
		}
	}
	mustMoss(t, "tag", image, "127.0.0.1:1/x:1")
	t0 := time.Now()
	if r := moss(t, "push", "127.0.0.1:1/x:1"); r.code == 0 || !strings.Contains(r.stderr, "127.0.0.1:1") || time.Since(t0) > 10*time.Second {
		t.Errorf("push to an unreachable registry: exit %d after %v, stderr %q", r.code, time.Since(t0), r.stderr)
	}
	mustMoss(t, "rmi", "127.0.0.1:1/x:1")
	if after := storeState(t); after != before {
		t.Errorf("failed pulls changed the store:\n%s\nthen:\n%s", before, after)
	}
}

// TestPullShortNames: with [registries] search, a short name comes from
// the search registry; with two and no terminal it is refused as
// ambiguous, naming both candidates.
func TestPullShortNames(t *testing.T) {
	reg := startRegistry(t, "", "")
	ref := reg.addr + "/it/short:1"
	id, _ := loadAndPush(t, ref, randomLayer(t, "a.txt"))
	mustMoss(t, "rmi", ref)
	t.Cleanup(func() { _ = exec.Command(mossBin, "rmi", "-f", ref).Run() })

	setConfig := func(search ...string) {
		q := make([]string, len(search))
		for i, s := range search {
			q[i] = `"` + s + `"`
		}
		writeAgentConfig(t, "[registries]\nsearch = ["+strings.Join(q, ", ")+"]\n")
		restartAgent(t)
	}
	t.Cleanup(func() {
		os.Remove(agentConfig())
		restartAgent(t)
	})
	setConfig(reg.addr)
	out := mustMoss(t, "pull", "it/short:1")
	if !strings.Contains(out, "Status: Downloaded newer image for "+ref) || !strings.HasSuffix(out, ref+"\n") {
		t.Errorf("pull of a short name:\n%s", out)
	}
	if got := imageID(t, ref); got != id {
		t.Fatalf("short name pulled ID %s, want %s", got, id)
	}
	// The short name finds the pulled image locally too, as Podman's.
	if got := imageID(t, "it/short:1"); got != id {
		t.Fatalf("image inspect of the short name: %s, want %s", got, id)
	}
	mustMoss(t, "rmi", ref)

	setConfig(reg.addr, "127.0.0.1:1")
	before := storeState(t)
	r := moss(t, "pull", "it/short:1")
	if r.code == 0 || !strings.Contains(r.stderr, "ambiguous") || !strings.Contains(r.stderr, ref) || !strings.Contains(r.stderr, "127.0.0.1:1/it/short:1") {
		t.Errorf("ambiguous short name: exit %d stderr %q", r.code, r.stderr)
	}
	if after := storeState(t); after != before {
		t.Errorf("the refused pull changed the store")
	}
	// A full name needs no search.
	if r := moss(t, "pull", "-q", ref); r.code != 0 || r.stdout != ref+"\n" {
		t.Errorf("full name with two search registries: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}
