package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mossIO runs the CLI with stdin read from in and stdout written to out
// (nil: none, captured).
func mossIO(t *testing.T, in io.Reader, out io.Writer, args ...string) result {
	t.Helper()
	cmd := exec.Command(mossBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, &stdout, &stderr
	if out != nil {
		cmd.Stdout = out
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("moss %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func archID(t *testing.T, ref string) string {
	t.Helper()
	return strings.TrimSpace(mustMoss(t, "image", "inspect", "--format", "{{.Id}}", ref))
}

// historyOf is an image's history without the IDs (a loaded image does
// not know the parents it was committed from): when, what, how big.
func historyOf(t *testing.T, ref string) string {
	t.Helper()
	return mustMoss(t, "history", "--human=false", "--no-trunc", "--format", "{{.CreatedAt}}|{{.CreatedBy}}|{{.Comment}}|{{.Size}}", ref)
}

// imagesAndContainers lists images (IDs and names) and containers, to prove a
// failed command changed nothing.
func imagesAndContainers(t *testing.T) string {
	t.Helper()
	return mustMoss(t, "images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}") +
		mustMoss(t, "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}")
}

// commitChanged runs a container that changes its root (adds /it/file,
// changes /etc/passwd, deletes /etc/group) and commits it to ref with
// extra commit arguments; it returns the container's name.
func commitChanged(t *testing.T, name, ref string, extra ...string) string {
	t.Helper()
	mustMoss(t, "run", "--name", name, image, "sh", "-c", "mkdir /it && echo committed > /it/file && rm /etc/group && echo x:x:9:9::/:/bin/sh >> /etc/passwd")
	rmf(t, name)
	args := append(append([]string{"commit"}, extra...), name)
	if ref != "" {
		args = append(args, ref)
	}
	out := mustMoss(t, args...)
	if !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("commit printed %q", out)
	}
	return name
}

func rmiAtEnd(t *testing.T, refs ...string) {
	t.Cleanup(func() {
		for _, r := range refs {
			_ = exec.Command(mossBin, "rmi", "-f", r).Run()
		}
	})
}

// Acceptance 2: save then load round-trips several images, with their
// IDs, tags and history, as docker-archive and oci-archive, from stdout
// to stdin, with the moss and the docker CLI.
func TestSaveLoadRoundTrip(t *testing.T) {
	commitChanged(t, "it-arch-src", "mosstest/it-arch-commit:1", "-m", "round trip")
	mustMoss(t, "tag", image, "mosstest/it-arch-tag:2")
	refs := []string{image, "mosstest/it-arch-commit:1", "mosstest/it-arch-tag:2"}
	rmiAtEnd(t, refs[1:]...)
	ids, hists := map[string]string{}, map[string]string{}
	for _, r := range refs {
		ids[r], hists[r] = archID(t, r), historyOf(t, r)
	}
	if n := strings.Count(hists[refs[1]], "\n"); n != strings.Count(hists[image], "\n")+1 {
		t.Fatalf("history of the commit has %d entries:\n%s", n, hists[refs[1]])
	}
	check := func(t *testing.T, how, out string) {
		t.Helper()
		for _, r := range refs {
			if want := "Loaded image: " + r; !strings.Contains(out, want) {
				t.Errorf("%s: load output lacks %q:\n%s", how, want, out)
			}
			if got := archID(t, r); got != ids[r] {
				t.Errorf("%s: %s has ID %s, want %s", how, r, got, ids[r])
			}
			if got := historyOf(t, r); got != hists[r] {
				t.Errorf("%s: history of %s:\n%s\nwant:\n%s", how, r, got, hists[r])
			}
		}
	}
	dir := t.TempDir()
	for _, format := range []string{"docker-archive", "oci-archive"} {
		t.Run(format, func(t *testing.T) {
			file := filepath.Join(dir, format+".tar")
			f, err := os.Create(file)
			if err != nil {
				t.Fatal(err)
			}
			r := mossIO(t, nil, f, append([]string{"save", "--format", format}, refs...)...)
			f.Close()
			if r.code != 0 {
				t.Fatalf("save to stdout: %+v", r)
			}
			mustMoss(t, "rmi", refs[1], refs[2])
			in, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			r = mossIO(t, in, nil, "load")
			if r.code != 0 {
				t.Fatalf("load from stdin: %+v", r)
			}
			check(t, format, r.stdout)
		})
	}
	t.Run("docker CLI", func(t *testing.T) {
		file := filepath.Join(dir, "docker.tar")
		if r := docker(t, append([]string{"save", "-o", file}, refs...)...); r.code != 0 {
			t.Fatalf("docker save: %+v", r)
		}
		if r := docker(t, "rmi", refs[1], refs[2]); r.code != 0 {
			t.Fatalf("docker rmi: %+v", r)
		}
		r := docker(t, "load", "-i", file)
		if r.code != 0 {
			t.Fatalf("docker load: %+v", r)
		}
		check(t, "docker", r.stdout)
		if r := docker(t, "history", "--no-trunc", "--format", "{{.CreatedBy}}", refs[1]); r.code != 0 || !strings.Contains(r.stdout, "mkdir /it") {
			t.Errorf("docker history: %+v", r)
		}
	})
	// The loaded commit still runs with its change.
	if out := mustMoss(t, "run", "--rm", refs[1], "cat", "/it/file"); out != "committed\n" {
		t.Errorf("loaded commit: %q", out)
	}
}

// podmanEnv runs the real rootless Podman with a private storage (its own
// root and run root), the user's runtime directory and configuration
// (runc, as TESTING.md says), so the user's own Podman images stay
// untouched.
type podmanEnv struct {
	t         *testing.T
	root, run string
	env       []string
}

func newPodman(t *testing.T) *podmanEnv {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman not installed")
	}
	home, _ := os.UserHomeDir()
	base, err := os.MkdirTemp("", "moss-it-podman-")
	if err != nil {
		t.Fatal(err)
	}
	p := &podmanEnv{t: t, root: filepath.Join(base, "root"), run: filepath.Join(base, "run")}
	// The suite's DOCKER_CONFIG names a directory that does not exist,
	// which Podman's auth lookup refuses.
	auth := filepath.Join(base, "docker")
	if err := os.MkdirAll(auth, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(auth, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.env = []string{"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "DOCKER_CONFIG=" + auth}
	if d := "/run/user/" + strconv.Itoa(os.Getuid()); dirOwned(d) {
		p.env = append(p.env, "XDG_RUNTIME_DIR="+d)
	}
	if r := p.cmd("info", "--format", "{{.Host.OCIRuntime.Name}}"); r.code != 0 {
		os.RemoveAll(base)
		t.Skipf("podman does not work here: %+v", r)
	}
	t.Cleanup(func() {
		// The storage holds files of subordinate IDs: remove them in
		// Podman's user namespace, then what Podman re-creates on exit.
		p.cmd("unshare", "rm", "-rf", p.root, p.run)
		if err := os.RemoveAll(base); err != nil {
			t.Errorf("remove podman storage: %v", err)
		}
	})
	return p
}

// dirOwned tells whether d is a directory of the user running the tests.
func dirOwned(d string) bool {
	fi, err := os.Stat(d)
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

func (p *podmanEnv) cmd(args ...string) result {
	p.t.Helper()
	return runEnv(p.t, p.env, "", "podman", append([]string{"--root", p.root, "--runroot", p.run}, args...)...)
}

func (p *podmanEnv) must(args ...string) string {
	p.t.Helper()
	r := p.cmd(args...)
	if r.code != 0 {
		p.t.Fatalf("podman %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// Acceptance 2 with the real Podman: Moss's docker-archive loads into
// Podman, and Podman's archives (docker-archive of two images, an
// oci-archive) load into Moss; the images keep their IDs and run.
func TestPodmanArchives(t *testing.T) {
	p := newPodman(t)
	commitChanged(t, "it-pod-src", "mosstest/it-pod:1", "-c", `CMD ["cat", "/it/file"]`)
	rmiAtEnd(t, "mosstest/it-pod:1", "localhost/it/from-podman:3", "localhost/it/podman-oci:4")
	mossID := archID(t, "mosstest/it-pod:1")
	baseID := archID(t, image)
	dir := t.TempDir()
	archive := filepath.Join(dir, "moss.tar")
	mustMoss(t, "save", "-o", archive, "mosstest/it-pod:1", image)

	out := p.must("load", "-i", archive)
	if !strings.Contains(out, "mosstest/it-pod:1") || !strings.Contains(out, "mosstest/busybox:latest") {
		t.Fatalf("podman load: %s", out)
	}
	if id := strings.TrimSpace(p.must("image", "inspect", "--format", "{{.Id}}", "docker.io/mosstest/it-pod:1")); "sha256:"+id != mossID && id != mossID {
		t.Errorf("podman's ID %s, Moss's %s", id, mossID)
	}
	if out := p.must("run", "--rm", "--network", "none", "docker.io/mosstest/it-pod:1"); out != "committed\n" {
		t.Errorf("podman run of Moss's commit: %q", out)
	}
	if out := p.must("history", "--format", "{{.CreatedBy}}", "docker.io/mosstest/it-pod:1"); !strings.Contains(out, "mkdir /it") || !strings.Contains(out, "moss import") {
		t.Errorf("podman history: %s", out)
	}

	// Podman's archives into Moss.
	p.must("tag", "docker.io/mosstest/it-pod:1", "localhost/it/from-podman:3")
	podArchive := filepath.Join(dir, "podman.tar")
	p.must("save", "-m", "-o", podArchive, "localhost/it/from-podman:3", "docker.io/mosstest/busybox:latest")
	out = mustMoss(t, "load", "-i", podArchive)
	if !strings.Contains(out, "Loaded image: localhost/it/from-podman:3") || !strings.Contains(out, "Loaded image: "+image) {
		t.Fatalf("moss load of podman save: %s", out)
	}
	if id := archID(t, "localhost/it/from-podman:3"); id != mossID {
		t.Errorf("image from podman has ID %s, want %s", id, mossID)
	}
	if id := archID(t, image); id != baseID {
		t.Errorf("base image from podman has ID %s, want %s", id, baseID)
	}
	if got, want := historyOf(t, "localhost/it/from-podman:3"), historyOf(t, "mosstest/it-pod:1"); got != want {
		t.Errorf("history after podman:\n%s\nwant:\n%s", got, want)
	}
	ociArchive := filepath.Join(dir, "podman-oci.tar")
	p.must("tag", "docker.io/mosstest/it-pod:1", "localhost/it/podman-oci:4")
	p.must("save", "--format", "oci-archive", "-o", ociArchive, "localhost/it/podman-oci:4")
	if out := mustMoss(t, "load", "-i", ociArchive); !strings.Contains(out, "Loaded image: localhost/it/podman-oci:4") {
		t.Fatalf("moss load of podman's oci-archive: %s", out)
	}
	if out := mustMoss(t, "run", "--rm", "localhost/it/podman-oci:4"); out != "committed\n" {
		t.Errorf("run of podman's oci-archive: %q", out)
	}
}

// layerEntries lists the entries of the last layer of an image, from a
// docker-archive of it.
func layerEntries(t *testing.T, ref string) []string {
	t.Helper()
	var buf bytes.Buffer
	if r := mossIO(t, nil, &buf, "save", ref); r.code != 0 {
		t.Fatalf("save %s: %+v", ref, r)
	}
	files, _ := readTar(t, &buf)
	var man []struct{ Layers []string }
	if err := json.Unmarshal(files["manifest.json"], &man); err != nil || len(man) != 1 {
		t.Fatalf("manifest.json %q: %v", files["manifest.json"], err)
	}
	layers := man[0].Layers
	var out []string
	lr := tar.NewReader(bytes.NewReader(files[layers[len(layers)-1]]))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, "/"+strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"))
	}
	sort.Strings(out)
	return out
}

// Acceptance 3: commit of a changed container gives an image whose new
// layer holds exactly the change and whose configuration follows -c.
func TestCommit(t *testing.T) {
	src := commitChanged(t, "it-commit-src", "mosstest/it-commit:1", "-m", "the change", "-a", "Moss Tester",
		"-c", `CMD ["cat", "/it/file"]`, "-c", "ENV IT=1 OTHER=two", "-c", "LABEL it.label=yes", "-c", "EXPOSE 8080",
		"-c", "WORKDIR /it", "-c", "USER root", "-c", "VOLUME /data")
	rmiAtEnd(t, "mosstest/it-commit:1")
	// The layer is exactly what diff reports: each change an entry, a
	// deletion a whiteout, nothing of the mount points Moss made.
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(mustMoss(t, "diff", src)), "\n") {
		kind, p, _ := strings.Cut(l, " ")
		if kind == "D" {
			p = path.Join(path.Dir(p), ".wh."+path.Base(p))
		}
		want = append(want, p)
	}
	sort.Strings(want)
	if got := layerEntries(t, "mosstest/it-commit:1"); !slices.Equal(got, want) {
		t.Errorf("the committed layer holds %q, the container changed %q", got, want)
	}
	if !slices.Contains(want, "/it/file") || !slices.Contains(want, "/etc/.wh.group") || slices.Contains(want, "/etc/hostname") {
		t.Errorf("diff %q", want)
	}
	// One layer and one history entry more than the image.
	layers := func(ref string) int {
		n, _ := strconv.Atoi(strings.TrimSpace(mustMoss(t, "image", "inspect", "--format", "{{len .RootFS.Layers}}", ref)))
		return n
	}
	if a, b := layers(image), layers("mosstest/it-commit:1"); b != a+1 {
		t.Errorf("%d layers, the image has %d", b, a)
	}
	hist := strings.Split(strings.TrimSpace(mustMoss(t, "history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}", "mosstest/it-commit:1")), "\n")
	base := strings.Split(strings.TrimSpace(mustMoss(t, "history", "-q", image)), "\n")
	if len(hist) != len(base)+1 || !strings.HasPrefix(hist[0], archID(t, "mosstest/it-commit:1")+"|sh -c mkdir /it") || !strings.HasSuffix(hist[0], "|the change") ||
		!strings.HasPrefix(hist[1], archID(t, image)+"|") {
		t.Errorf("history:\n%s\nbase:\n%s", strings.Join(hist, "\n"), strings.Join(base, "\n"))
	}
	cfg := mustMoss(t, "image", "inspect", "--format", "{{json .Config.Cmd}} {{json .Config.Env}} {{index .Config.Labels \"it.label\"}} {{json .Config.ExposedPorts}} {{.Config.WorkingDir}} {{.Config.User}} {{json .Config.Volumes}} {{.Author}} {{.Comment}}", "mosstest/it-commit:1")
	if want := `["cat","/it/file"] ["IT=1","OTHER=two"] yes {"8080/tcp":{}} /it root {"/data":{}} Moss Tester the change` + "\n"; cfg != want {
		t.Errorf("config:\n%s\nwant:\n%s", cfg, want)
	}
	// Running it: CMD from -c, the changes there, nothing new in its diff.
	if out := mustMoss(t, "run", "--name", "it-commit-run", "mosstest/it-commit:1"); out != "committed\n" {
		t.Errorf("run of the commit: %q", out)
	}
	rmf(t, "it-commit-run")
	// (The image's VOLUME /data makes a mount point, as in docker.)
	if out := mustMoss(t, "diff", "it-commit-run"); out != "" && out != "A /data\n" {
		t.Errorf("diff of a container of the commit: %q", out)
	}
	if out := mustMoss(t, "run", "--rm", "mosstest/it-commit:1", "sh", "-c", "test -e /etc/group || tail -n1 /etc/passwd; pwd"); out != "x:x:9:9::/:/bin/sh\n/it\n" {
		t.Errorf("files of the commit: %q", out)
	}
	// ENTRYPOINT without CMD clears the command, as docker does.
	mustMoss(t, "commit", "-c", `ENTRYPOINT ["cat"]`, src, "mosstest/it-commit:ep")
	rmiAtEnd(t, "mosstest/it-commit:ep")
	if got := mustMoss(t, "image", "inspect", "--format", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", "mosstest/it-commit:ep"); got != "[\"cat\"] null\n" {
		t.Errorf("entrypoint commit: %q", got)
	}

	// A running container: paused while committed where its cgroup has a
	// freezer, else committed running with a warning; it runs on.
	mustMoss(t, "run", "-d", "--name", "it-commit-live", image, "sh", "-c", "echo live > /live; sleep 1000")
	rmf(t, "it-commit-live")
	waitFor(t, "/live", 10*time.Second, func() bool { return moss(t, "exec", "it-commit-live", "cat", "/live").stdout == "live\n" })
	r := moss(t, "commit", "it-commit-live", "mosstest/it-commit:live")
	rmiAtEnd(t, "mosstest/it-commit:live")
	if r.code != 0 || r.stderr != "" && !strings.Contains(r.stderr, "without pausing") {
		t.Fatalf("commit of a running container: %+v", r)
	}
	if st := strings.TrimSpace(mustMoss(t, "inspect", "--format", "{{.State.Status}}", "it-commit-live")); st != "running" {
		t.Errorf("container %s after the commit", st)
	}
	if out := mustMoss(t, "run", "--rm", "mosstest/it-commit:live", "cat", "/live"); out != "live\n" {
		t.Errorf("commit of the running container: %q", out)
	}

	// The docker CLI: commit, history.
	r = docker(t, "commit", "-c", `CMD ["cat", "/it/file"]`, "-m", "by docker", src, "mosstest/it-commit:docker")
	rmiAtEnd(t, "mosstest/it-commit:docker")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sha256:") {
		t.Fatalf("docker commit: %+v", r)
	}
	if r := docker(t, "history", "mosstest/it-commit:docker"); r.code != 0 || !strings.Contains(r.stdout, "by docker") || !strings.Contains(r.stdout, "IMAGE") {
		t.Errorf("docker history: %+v", r)
	}
	if out := mustMoss(t, "run", "--rm", "mosstest/it-commit:docker"); out != "committed\n" {
		t.Errorf("run of docker's commit: %q", out)
	}
}

// Bad input: a commit of a missing container or with a bad change, loads
// of truncated and damaged archives: clear errors, and the store is as it
// was.
func TestImageBadInput(t *testing.T) {
	mustMoss(t, "create", "--name", "it-bad-src", image, "true")
	rmf(t, "it-bad-src")
	// The archives hold an image that is not in the store, so a load
	// must copy (and check) its layers.
	commitChanged(t, "it-bad-commit", "mosstest/it-bad:1")
	dir := t.TempDir()
	saved := filepath.Join(dir, "saved.tar")
	mustMoss(t, "save", "-o", saved, "mosstest/it-bad:1")
	mustMoss(t, "rm", "it-bad-commit")
	mustMoss(t, "rmi", "mosstest/it-bad:1")
	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.tar")
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged.tar")
	if err := os.WriteFile(damaged, damageLayer(t, data), 0o644); err != nil {
		t.Fatal(err)
	}
	before := imagesAndContainers(t)
	cases := []struct {
		name string
		run  func() result
		msg  []string
	}{
		{"commit missing container", func() result { return moss(t, "commit", "it-no-such-ctr", "x:1") }, []string{"No such container: it-no-such-ctr"}},
		{"commit bad change", func() result { return moss(t, "commit", "-c", "BOGUS x", "it-bad-src", "x:2") }, []string{"BOGUS is not a valid change command"}},
		{"commit bad port", func() result { return moss(t, "commit", "-c", "EXPOSE nope", "it-bad-src", "x:3") }, []string{"EXPOSE nope"}},
		{"commit bad name", func() result { return moss(t, "commit", "it-bad-src", "UPPER/Case") }, []string{"invalid reference format"}},
		{"docker commit bad change", func() result { return docker(t, "commit", "-c", "FROM x", "it-bad-src", "x:4") }, []string{"FROM is not a valid change command"}},
		{"load truncated", func() result { return moss(t, "load", "-i", truncated) }, []string{"truncated"}},
		{"docker load truncated", func() result { return docker(t, "load", "-i", truncated) }, []string{"truncated"}},
		{"load damaged", func() result { return moss(t, "load", "-i", damaged) }, []string{"nothing was loaded"}},
		{"docker load damaged", func() result { return docker(t, "load", "-i", damaged) }, []string{"nothing was loaded"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.run()
			if r.code == 0 || !containsAny(r.stderr, tc.msg) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", r.code, r.stderr, tc.msg)
			}
			if after := imagesAndContainers(t); after != before {
				t.Fatalf("the store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// readTar reads a tar archive: each entry's contents by name, and the
// headers in order.
func readTar(t *testing.T, r io.Reader) (map[string][]byte, []*tar.Header) {
	t.Helper()
	files := map[string][]byte{}
	var hdrs []*tar.Header
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		hdrs, files[h.Name] = append(hdrs, h), b
	}
}

// damageLayer flips a byte in the last layer of a docker-archive, keeping
// its size.
func damageLayer(t *testing.T, archive []byte) []byte {
	t.Helper()
	files, hdrs := readTar(t, bytes.NewReader(archive))
	var man []map[string]interface{}
	if err := json.Unmarshal(files["manifest.json"], &man); err != nil {
		t.Fatal(err)
	}
	layers := man[0]["Layers"].([]interface{})
	victim := files[layers[len(layers)-1].(string)]
	victim[len(victim)/2] ^= 0xff
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, h := range hdrs {
		tw.WriteHeader(h)
		tw.Write(files[h.Name])
	}
	tw.Close()
	return out.Bytes()
}

// image prune (dangling, -a with filters), rmi of images in use, system
// df, with the moss and the docker CLI.
func TestImagePruneAndDF(t *testing.T) {
	// A dangling commit goes with prune; tagged images stay.
	mustMoss(t, "run", "--name", "it-prune-src", image, "touch", "/dangling")
	rmf(t, "it-prune-src")
	dangling := strings.TrimSpace(mustMoss(t, "commit", "it-prune-src"))
	if !strings.Contains(mustMoss(t, "images", "--no-trunc", "-q", "--filter", "dangling=true"), dangling) {
		t.Fatalf("the untagged commit %s is not listed as dangling", dangling)
	}
	mustMoss(t, "rm", "it-prune-src")
	out := mustMoss(t, "image", "prune", "-f")
	if !strings.Contains(out, "deleted: "+dangling) || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("prune output lacks %s:\n%s", dangling, out)
	}
	if r := moss(t, "image", "inspect", dangling); r.code == 0 {
		t.Errorf("dangling image %s still there", dangling)
	}
	archID(t, image)

	// -a removes unused images, here only the labelled ones; one in use
	// stays, and one newer than until= too.
	commitChanged(t, "it-prune-a", "mosstest/it-prune:a", "-c", "LABEL it.prune=yes")
	commitChanged(t, "it-prune-b", "mosstest/it-prune:b", "-c", "LABEL it.prune=yes")
	rmiAtEnd(t, "mosstest/it-prune:a", "mosstest/it-prune:b")
	mustMoss(t, "rm", "it-prune-a")
	mustMoss(t, "create", "--name", "it-prune-user", "mosstest/it-prune:b", "true")
	rmf(t, "it-prune-user")
	if out := mustMoss(t, "image", "prune", "-a", "-f", "--filter", "label=it.prune=yes", "--filter", "until=1h"); strings.Contains(out, "it-prune") {
		t.Errorf("prune until=1h removed a new image:\n%s", out)
	}
	r := docker(t, "image", "prune", "-a", "-f", "--filter", "label=it.prune=yes")
	if r.code != 0 || !strings.Contains(r.stdout, "untagged: mosstest/it-prune:a") || strings.Contains(r.stdout, "it-prune:b") {
		t.Errorf("docker image prune -a: %+v", r)
	}
	archID(t, image)
	archID(t, "mosstest/it-prune:b")
	// rmi refuses an image a container uses, and, by its ID even with
	// -f, one a commit was made from; by its name that is only untagged.
	if r := moss(t, "rmi", "mosstest/it-prune:b"); r.code == 0 || !containsAny(r.stderr, []string{"in use", "is using"}) {
		t.Errorf("rmi of an image in use: %+v", r)
	}
	mustMoss(t, "run", "--name", "it-prune-child", "mosstest/it-prune:b", "touch", "/child")
	rmf(t, "it-prune-child")
	mustMoss(t, "commit", "it-prune-child", "mosstest/it-prune:child")
	rmiAtEnd(t, "mosstest/it-prune:child")
	mustMoss(t, "rm", "it-prune-child", "it-prune-user")
	parent := archID(t, "mosstest/it-prune:b")
	if r := moss(t, "rmi", "-f", parent); r.code == 0 || !strings.Contains(r.stderr, "dependent child images") {
		t.Errorf("rmi -f of a parent image by ID: %+v", r)
	}
	if out := mustMoss(t, "rmi", "mosstest/it-prune:b"); !strings.Contains(out, "Untagged: mosstest/it-prune:b") || strings.Contains(out, "Deleted") {
		t.Errorf("rmi of a parent image by name: %s", out)
	}
	// Removing the child removes the untagged parent too.
	if out := mustMoss(t, "rmi", "mosstest/it-prune:child"); !strings.Contains(out, "Deleted: "+parent) {
		t.Errorf("rmi of the child left its untagged parent:\n%s", out)
	}

	// system df: every image, the container, a volume with its size.
	mustMoss(t, "volume", "create", "it-df-vol")
	t.Cleanup(func() { _ = exec.Command(mossBin, "volume", "rm", "-f", "it-df-vol").Run() })
	mustMoss(t, "run", "--rm", "-v", "it-df-vol:/v", image, "sh", "-c", "head -c 5000 /bin/busybox > /v/data")
	ids := map[string]bool{}
	for _, id := range strings.Fields(mustMoss(t, "images", "-q", "--no-trunc")) {
		ids[id] = true
	}
	df := mustMoss(t, "system", "df")
	lines := strings.Split(strings.TrimSpace(df), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "TYPE") || !strings.HasPrefix(lines[1], "Images") || !strings.HasPrefix(lines[4], "Build Cache") {
		t.Fatalf("system df:\n%s", df)
	}
	if f := strings.Fields(lines[1]); f[1] != strconv.Itoa(len(ids)) {
		t.Errorf("system df counts %s images, images lists %d:\n%s", f[1], len(ids), df)
	}
	r = docker(t, "system", "df", "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "Images space usage:") || !strings.Contains(r.stdout, "Containers space usage:") {
		t.Fatalf("docker system df -v: %+v", r)
	}
	found := false
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "it-df-vol" {
			found = true
			if f[1] != "0" || f[2] != "5kB" {
				t.Errorf("volume row %q, want 0 links and 5kB", l)
			}
		}
	}
	if !found {
		t.Errorf("docker system df -v lacks the volume:\n%s", r.stdout)
	}
	if r := docker(t, "system", "df"); r.code != 0 || !strings.Contains(r.stdout, "Local Volumes") {
		t.Errorf("docker system df: %+v", r)
	}
}
