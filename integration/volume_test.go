package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// volumes lists the volume names.
func volumes(t *testing.T) []string {
	t.Helper()
	names := strings.Fields(mustMoss(t, "volume", "ls", "-q"))
	sort.Strings(names)
	return names
}

func hasVolume(t *testing.T, name string) bool {
	t.Helper()
	for _, n := range volumes(t) {
		if n == name {
			return true
		}
	}
	return false
}

// rmVolumes removes the named volumes when the test ends.
func rmVolumes(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			_ = exec.Command(mossBin, "volume", "rm", "-f", n).Run()
		}
	})
}

type mountJSON struct {
	Type, Name, Source, Destination, Driver, Mode string
	RW                                            bool
}

func mountsOf(t *testing.T, ctr string) map[string]mountJSON {
	t.Helper()
	var out []struct{ Mounts []mountJSON }
	if err := json.Unmarshal([]byte(mustMoss(t, "inspect", ctr)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v", ctr, err)
	}
	m := map[string]mountJSON{}
	for _, mp := range out[0].Mounts {
		m[mp.Destination] = mp
	}
	return m
}

func ownerOf(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

func killAgent(t *testing.T) {
	t.Helper()
	a := agentPID()
	if err := syscall.Kill(a, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(a, 5*time.Second)
	mustMoss(t, "version")
}

// TestNamedVolume: what one container writes to a named volume, another
// reads, also after both are removed and the agent was killed (acceptance
// 1); the file belongs to the invoking user on the host.
func TestNamedVolume(t *testing.T) {
	rmVolumes(t, "vol1")
	if out := mustMoss(t, "volume", "create", "vol1"); out != "vol1\n" {
		t.Fatalf("volume create printed %q", out)
	}
	mustMoss(t, "run", "--name", "vw", "-v", "vol1:/data", image, "sh", "-c", "echo hello > /data/x")
	mustMoss(t, "run", "--name", "vr", "-v", "vol1:/data:ro", image, "cat", "/data/x")
	mustMoss(t, "rm", "vw", "vr")
	killAgent(t)
	if out := mustMoss(t, "run", "--rm", "-v", "vol1:/data", image, "cat", "/data/x"); out != "hello\n" {
		t.Fatalf("after the agent restart the volume holds %q", out)
	}
	var vs []struct{ Name, Driver, Mountpoint, Scope string }
	if err := json.Unmarshal([]byte(mustMoss(t, "volume", "inspect", "vol1")), &vs); err != nil || len(vs) != 1 {
		t.Fatalf("volume inspect: %v", err)
	}
	if vs[0].Driver != "local" || vs[0].Scope != "local" || vs[0].Mountpoint != filepath.Join(dataDir, "volumes", "vol1", "_data") {
		t.Fatalf("volume inspect: %+v", vs[0])
	}
	x := filepath.Join(vs[0].Mountpoint, "x")
	if fi, err := os.Stat(x); err == nil {
		if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != os.Getuid() {
			t.Errorf("the file container root wrote belongs to %d on the host, not to the user %d", uid, os.Getuid())
		}
	} else {
		// Seen twice in full runs of make check (EACCES), never alone:
		// record who owns each directory on the way, and check the file
		// from the holder's user namespace, where the user is root.
		for d := x; d != "/"; d = filepath.Dir(d) {
			if fi, err := os.Lstat(d); err == nil {
				st := fi.Sys().(*syscall.Stat_t)
				t.Logf("%s: %v uid %d gid %d", d, fi.Mode(), st.Uid, st.Gid)
			} else {
				t.Logf("%s: %v", d, err)
			}
		}
		out, err := exec.Command("nsenter", "--user", "--mount", "--preserve-credentials", "-t", strconv.Itoa(holderChild()), "stat", "-c", "%u", x).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "0" {
			t.Errorf("stat %s failed on the host (%v) and in the holder's namespace it says %q (%v)", x, err, out, err)
		}
	}
	if !strings.Contains(mustMoss(t, "volume", "ls"), "local     vol1") {
		t.Errorf("volume ls:\n%s", mustMoss(t, "volume", "ls"))
	}
}

// TestBindMounts: a :ro bind cannot be written (EROFS); a :rw one can,
// and the host sees the file, owned by the invoking user; -v makes a
// missing host directory (acceptance 2).
func TestBindMounts(t *testing.T) {
	dir := t.TempDir()
	r := moss(t, "run", "--rm", "-v", dir+":/mnt:ro", image, "sh", "-c", "echo x > /mnt/f")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("write to a :ro bind: %+v", r)
	}
	mustMoss(t, "run", "--rm", "-v", dir+":/mnt:rw", image, "sh", "-c", "echo written > /mnt/f")
	if got := readFile(filepath.Join(dir, "f")); got != "written\n" {
		t.Fatalf("the host sees %q", got)
	}
	if uid := ownerOf(t, filepath.Join(dir, "f")); uid != os.Getuid() {
		t.Errorf("the file belongs to %d, not %d", uid, os.Getuid())
	}
	missing := filepath.Join(dir, "new", "sub")
	mustMoss(t, "run", "--rm", "-v", missing+":/m", image, "touch", "/m/y")
	if _, err := os.Stat(filepath.Join(missing, "y")); err != nil {
		t.Fatalf("-v with a missing host directory: %v", err)
	}
	// Read-only all the way down: a mount below the source (made in the
	// holder's mount namespace, where the agent sees the host) is
	// read-only too.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	inHolder := func(args ...string) {
		t.Helper()
		full := append([]string{"--user", "--mount", "--preserve-credentials", "-t", strconv.Itoa(holderChild())}, args...)
		if out, err := exec.Command("nsenter", full...).CombinedOutput(); err != nil {
			t.Fatalf("nsenter %v: %v: %s", args, err, out)
		}
	}
	inHolder("mount", "-t", "tmpfs", "tmpfs", sub)
	t.Cleanup(func() { inHolder("umount", sub) })
	if out := mustMoss(t, "run", "--rm", "-v", dir+":/mnt", image, "sh", "-c", "touch /mnt/sub/w && echo writable"); out != "writable\n" {
		t.Fatalf("the submount of a rw bind: %q", out)
	}
	r = moss(t, "run", "--rm", "-v", dir+":/mnt:ro", image, "touch", "/mnt/sub/x")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("write below a :ro bind, into a submount: %+v", r)
	}
	// --mount's read-only is the same, and its bind source must exist.
	r = moss(t, "run", "--rm", "--mount", "type=bind,src="+dir+",dst=/mnt,readonly", image, "touch", "/mnt/g")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("write to a --mount readonly bind: %+v", r)
	}
}

// TestVolumesFrom: --volumes-from gives the mounts of another container,
// a :ro bind and a named volume, with their modes (acceptance 3).
func TestVolumesFrom(t *testing.T) {
	dir := t.TempDir()
	rmVolumes(t, "vfvol")
	rmf(t, "vfsrc", "vfdst")
	mustMoss(t, "create", "--name", "vfsrc", "-v", dir+":/b:ro", "-v", "vfvol:/v", image, "true")
	mustMoss(t, "run", "--name", "vfdst", "--volumes-from", "vfsrc", image, "sh", "-c", "echo from > /v/f")
	src, dst := mountsOf(t, "vfsrc"), mountsOf(t, "vfdst")
	for _, d := range []string{"/b", "/v"} {
		if src[d] != dst[d] || src[d].Destination == "" {
			t.Errorf("mount %s: source container %+v, --volumes-from %+v", d, src[d], dst[d])
		}
	}
	if b := dst["/b"]; b.Type != "bind" || b.RW || b.Source != dir {
		t.Errorf("bind: %+v", b)
	}
	if v := dst["/v"]; v.Type != "volume" || !v.RW || v.Name != "vfvol" {
		t.Errorf("volume: %+v", v)
	}
	r := moss(t, "run", "--rm", "--volumes-from", "vfsrc", image, "touch", "/b/x")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("write to the inherited :ro bind: %+v", r)
	}
	if out := mustMoss(t, "run", "--rm", "--volumes-from", "vfsrc:ro", image, "sh", "-c", "cat /v/f; touch /v/y 2>&1 || true"); !strings.Contains(out, "from") || !strings.Contains(out, "Read-only") {
		t.Fatalf("--volumes-from CTR:ro: %q", out)
	}
}

// TestTmpfsMounts: --tmpfs with a size is a tmpfs of that size (acceptance
// 4); --mount type=tmpfs is the same.
func TestTmpfsMounts(t *testing.T) {
	out := mustMoss(t, "run", "--rm", "--tmpfs", "/scratch:size=1m", image, "grep", " /scratch ", "/proc/mounts")
	if !strings.HasPrefix(out, "tmpfs /scratch tmpfs") || !strings.Contains(out, "size=1024k") {
		t.Fatalf("/proc/mounts: %q", out)
	}
	r := moss(t, "run", "--rm", "--tmpfs", "/scratch:size=1m", image, "dd", "if=/dev/zero", "of=/scratch/f", "bs=1024", "count=2048")
	if r.code == 0 || !strings.Contains(r.stderr, "No space left on device") {
		t.Fatalf("writing 2 MB into 1 MB: %+v", r)
	}
	out = mustMoss(t, "run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=2m,tmpfs-mode=1770", image, "sh", "-c", "grep ' /t ' /proc/mounts; stat -c %a /t")
	if !strings.Contains(out, "size=2048k") || !strings.Contains(out, "1770") {
		t.Fatalf("--mount type=tmpfs: %q", out)
	}
}

// volumeImage builds an image with VOLUME /var/lib/data holding a file of
// user 1000.
func volumeImage(t *testing.T) string {
	t.Helper()
	const name = "mosstest/volimg:latest"
	if moss(t, "image", "inspect", name).code == 0 {
		return name
	}
	rmf(t, "volimgsrc")
	mustMoss(t, "run", "--name", "volimgsrc", image, "sh", "-c", "mkdir -p /var/lib/data && echo seed > /var/lib/data/seed && chown -R 1000:1000 /var/lib/data")
	tar := filepath.Join(t.TempDir(), "volimg.tar")
	mustMoss(t, "export", "-o", tar, "volimgsrc")
	mustMoss(t, "import", "-c", "VOLUME /var/lib/data", "-c", "CMD [\"sh\"]", tar, name)
	return name
}

// TestImageVolume: an image's VOLUME gets an anonymous volume filled with
// the image's files (owners kept); rm -v and run --rm remove it
// (acceptance 5).
func TestImageVolume(t *testing.T) {
	img := volumeImage(t)
	rmf(t, "ivc")
	before := volumes(t)
	out := mustMoss(t, "run", "--name", "ivc", img, "sh", "-c", "cat /var/lib/data/seed; stat -c %u /var/lib/data/seed /var/lib/data")
	if want := "seed\n1000\n1000\n"; out != want {
		t.Fatalf("the anonymous volume holds %q, want the image's file of user 1000", out)
	}
	m := mountsOf(t, "ivc")["/var/lib/data"]
	if m.Type != "volume" || len(m.Name) != 64 || !m.RW {
		t.Fatalf("mount: %+v", m)
	}
	if !hasVolume(t, m.Name) {
		t.Fatalf("volume %s not listed: %v", m.Name, volumes(t))
	}
	mustMoss(t, "rm", "-v", "ivc")
	if hasVolume(t, m.Name) {
		t.Fatalf("rm -v left the anonymous volume %s", m.Name)
	}
	mustMoss(t, "run", "--rm", img, "true")
	mustMoss(t, "run", "--rm", "-v", "/anon", image, "true")
	if after := volumes(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("run --rm left volumes: before %v, after %v", before, after)
	}
	// A named volume over the directory is filled the same way, once.
	rmVolumes(t, "ivnamed")
	if out := mustMoss(t, "run", "--rm", "-v", "ivnamed:/var/lib/data", img, "cat", "/var/lib/data/seed"); out != "seed\n" {
		t.Fatalf("named volume over the image's directory: %q", out)
	}
	mustMoss(t, "run", "--rm", "-v", "ivnamed:/var/lib/data", img, "sh", "-c", "echo mine > /var/lib/data/seed")
	if out := mustMoss(t, "run", "--rm", "-v", "ivnamed:/var/lib/data", img, "cat", "/var/lib/data/seed"); out != "mine\n" {
		t.Fatalf("a filled volume was filled again: %q", out)
	}
}

// TestVolumePruneAndInUse: prune removes only unused (anonymous, or with
// -a all) volumes; rm of a volume in use is refused (acceptance 6).
func TestVolumePruneAndInUse(t *testing.T) {
	rmVolumes(t, "pused", "punused")
	rmf(t, "puc", "puanon")
	mustMoss(t, "volume", "create", "pused")
	mustMoss(t, "volume", "create", "--label", "keep=no", "punused")
	mustMoss(t, "run", "-d", "--name", "puc", "-v", "pused:/d", image, "sleep", "1000")
	mustMoss(t, "create", "--name", "puanon", "-v", "/anon", image, "true")
	anon := mountsOf(t, "puanon")["/anon"].Name
	mustMoss(t, "rm", "puanon")
	r := moss(t, "volume", "rm", "pused")
	if r.code == 0 || !strings.Contains(r.stderr, "volume is in use") {
		t.Fatalf("volume rm of a volume in use: %+v", r)
	}
	if r := moss(t, "volume", "rm", "-f", "pused"); r.code == 0 {
		t.Fatalf("volume rm -f of a volume in use: %+v", r)
	}
	out := mustMoss(t, "volume", "prune", "-f")
	if !strings.Contains(out, anon) || strings.Contains(out, "punused") || strings.Contains(out, "pused") {
		t.Fatalf("volume prune:\n%s", out)
	}
	if !hasVolume(t, "punused") || hasVolume(t, anon) {
		t.Fatalf("after prune: %v", volumes(t))
	}
	if got := strings.Fields(mustMoss(t, "volume", "ls", "-q", "--filter", "dangling=true", "--filter", "label=keep")); len(got) != 1 || got[0] != "punused" {
		t.Fatalf("ls dangling with label: %v", got)
	}
	out = mustMoss(t, "volume", "prune", "-af")
	if !strings.Contains(out, "punused") || strings.Contains(out, "pused") {
		t.Fatalf("volume prune -a:\n%s", out)
	}
	if !hasVolume(t, "pused") || hasVolume(t, "punused") {
		t.Fatalf("after prune -a: %v", volumes(t))
	}
	mustMoss(t, "rm", "-f", "puc")
	mustMoss(t, "volume", "rm", "pused")
	// The volumes of a run --rm are released after it returns; removing
	// one right away waits for that instead of failing.
	for i := 0; i < 5; i++ {
		mustMoss(t, "volume", "create", "prm")
		mustMoss(t, "run", "--rm", "-v", "prm:/d", image, "true")
		mustMoss(t, "volume", "rm", "prm")
	}
}

// TestVolumeBadInput: bad names, sources, destinations and drivers are
// refused with clear errors, and nothing is created or lost (acceptance 9).
func TestVolumeBadInput(t *testing.T) {
	rmVolumes(t, "keepme")
	mustMoss(t, "volume", "create", "keepme")
	mustMoss(t, "run", "--rm", "-v", "keepme:/d", image, "sh", "-c", "echo precious > /d/p")
	ctrs := mustMoss(t, "ps", "-aq")
	vols := volumes(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rm", "-v", "../x:/d", image, "true"}, "includes invalid characters for a local volume name"},
		{[]string{"run", "--rm", "-v", "a/b:/d", image, "true"}, "If you intended to pass a host directory, use absolute path"},
		{[]string{"volume", "create", "../x"}, "includes invalid characters"},
		{[]string{"volume", "create", "a/b"}, "includes invalid characters"},
		{[]string{"run", "--rm", "--mount", "type=bind,src=/nonexistent/dir,dst=/d", image, "true"}, "bind source path does not exist: /nonexistent/dir"},
		{[]string{"run", "--rm", "-v", "/tmp:/", image, "true"}, "destination can't be '/'"},
		{[]string{"run", "--rm", "-v", "keepme:/proc", image, "true"}, "/proc is reserved"},
		{[]string{"run", "--rm", "--mount", "type=volume,src=keepme,dst=/proc/sys", image, "true"}, "/proc/sys is reserved"},
		{[]string{"volume", "create", "-d", "nosuch", "vx"}, `plugin "nosuch" not found`},
		{[]string{"run", "--rm", "--mount", "type=volume,src=vy,dst=/d,volume-driver=nosuch", image, "true"}, `plugin "nosuch" not found`},
		{[]string{"run", "--rm", "-v", "keepme:/d", "-v", "/tmp:/d", image, "true"}, "Duplicate mount point: /d"},
		{[]string{"run", "--rm", "-v", "keepme:/d:xx", image, "true"}, "invalid mode: xx"},
		{[]string{"volume", "create", "-o", "bogus=1", "vz"}, "bogus"},
		{[]string{"volume", "rm", "nosuchvolume"}, "no such volume"},
		{[]string{"run", "--rm", "--volumes-from", "nosuchctr", image, "true"}, "No such container: nosuchctr"},
	} {
		r := moss(t, tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("moss %s: exit %d, stderr %q; want an error with %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	if got := mustMoss(t, "ps", "-aq"); got != ctrs {
		t.Errorf("containers changed: %q → %q", ctrs, got)
	}
	if got := volumes(t); strings.Join(got, " ") != strings.Join(vols, " ") {
		t.Errorf("volumes changed: %v → %v", vols, got)
	}
	if out := mustMoss(t, "run", "--rm", "-v", "keepme:/d", image, "cat", "/d/p"); out != "precious\n" {
		t.Errorf("the volume's data: %q", out)
	}
}

// TestDockerCLIVolumes: the docker CLI does the same against the Moss
// socket (acceptance 8).
func TestDockerCLIVolumes(t *testing.T) {
	must := func(args ...string) string {
		t.Helper()
		r := docker(t, args...)
		if r.code != 0 {
			t.Fatalf("docker %s: exit %d: %s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	rmVolumes(t, "dvol", "dunused")
	rmf(t, "dsrc", "dvf", "dimg")
	dir := t.TempDir()
	if out := must("volume", "create", "dvol"); out != "dvol\n" {
		t.Fatalf("docker volume create: %q", out)
	}
	must("run", "--rm", "-v", "dvol:/data", image, "sh", "-c", "echo via-docker > /data/x")
	killAgent(t)
	if out := must("run", "--rm", "--mount", "type=volume,src=dvol,dst=/data,readonly", image, "cat", "/data/x"); out != "via-docker\n" {
		t.Fatalf("read back: %q", out)
	}
	if r := docker(t, "run", "--rm", "-v", dir+":/mnt:ro", image, "touch", "/mnt/f"); r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("docker: write to :ro bind: %+v", r)
	}
	must("run", "--rm", "-v", dir+":/mnt", image, "sh", "-c", "echo rw > /mnt/f")
	if uid := ownerOf(t, filepath.Join(dir, "f")); uid != os.Getuid() || readFile(filepath.Join(dir, "f")) != "rw\n" {
		t.Fatalf("docker: rw bind: owner %d, %q", uid, readFile(filepath.Join(dir, "f")))
	}
	must("create", "--name", "dsrc", "-v", dir+":/b:ro", "-v", "dvol:/v", image, "true")
	out := must("run", "--name", "dvf", "--volumes-from", "dsrc", image, "sh", "-c", "cat /v/x; touch /b/y 2>&1 || true")
	if !strings.Contains(out, "via-docker") || !strings.Contains(out, "Read-only") {
		t.Fatalf("docker --volumes-from: %q", out)
	}
	var insp []struct {
		Mounts []mountJSON
	}
	if err := json.Unmarshal([]byte(must("inspect", "dvf")), &insp); err != nil || len(insp) != 1 || len(insp[0].Mounts) != 2 {
		t.Fatalf("docker inspect mounts: %v %+v", err, insp)
	}
	r := docker(t, "run", "--rm", "--tmpfs", "/scratch:size=1m", image, "dd", "if=/dev/zero", "of=/scratch/f", "bs=1024", "count=2048")
	if r.code == 0 || !strings.Contains(r.stderr, "No space left on device") {
		t.Fatalf("docker --tmpfs: %+v", r)
	}
	img := volumeImage(t)
	must("run", "--name", "dimg", img, "cat", "/var/lib/data/seed")
	anon := ""
	for _, m := range mountsOf(t, "dimg") {
		anon = m.Name
	}
	if anon == "" || !strings.Contains(must("volume", "ls"), anon) {
		t.Fatalf("docker: anonymous volume %q not listed", anon)
	}
	must("rm", "-v", "dimg")
	if strings.Contains(must("volume", "ls", "-q"), anon) {
		t.Fatalf("docker rm -v left %s", anon)
	}
	if r := docker(t, "volume", "rm", "dvol"); r.code == 0 || !strings.Contains(r.stderr, "volume is in use") {
		t.Fatalf("docker volume rm in use: %+v", r)
	}
	must("rm", "dvf", "dsrc")
	must("volume", "create", "dunused")
	out = must("volume", "prune", "-f")
	if strings.Contains(out, "dunused") || strings.Contains(out, "dvol") {
		t.Fatalf("docker volume prune removed named volumes:\n%s", out)
	}
	out = must("volume", "prune", "-af")
	if !strings.Contains(out, "dunused") || !strings.Contains(out, "dvol") {
		t.Fatalf("docker volume prune -a:\n%s", out)
	}
	if out := must("volume", "ls", "-q", "--filter", "name=dvol"); out != "" {
		t.Fatalf("after prune -a: %q", out)
	}
}

// TestVolumePlugins: the SDK example plugin of contrib/volume-example,
// loaded from a plugin directory named in the configuration file, and a
// plugin speaking Docker's
// volume-plugin protocol, found by its socket there, each create, mount
// and remove a volume a container uses (acceptance 7). A Docker plugin
// that crashes during Mount fails the start with a clear error, leaves no
// container behind (--rm) and loses no volume (acceptance 9).
// hack/check.sh builds both (MOSS_IT_VOLUME_EXAMPLE,
// MOSS_IT_DOCKER_VOLUME_PLUGIN).
func TestVolumePlugins(t *testing.T) {
	example, dplugin := os.Getenv("MOSS_IT_VOLUME_EXAMPLE"), os.Getenv("MOSS_IT_DOCKER_VOLUME_PLUGIN")
	if example == "" || dplugin == "" {
		t.Skip("MOSS_IT_VOLUME_EXAMPLE and MOSS_IT_DOCKER_VOLUME_PLUGIN are not set (hack/check.sh builds them)")
	}
	dir := filepath.Join(dataDir, "plugins")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	extDir := t.TempDir()
	exe := filepath.Join(extDir, "moss-volume-example")
	copyExecutable(t, example, exe)
	writeAgentConfig(t, "[plugins]\ndirs = [\""+extDir+"\"]\n")
	var procs []*exec.Cmd
	for _, p := range []struct {
		name  string
		extra []string
	}{{"dvp", nil}, {"crashy", []string{"-crash-on-mount"}}} {
		cmd := exec.Command(dplugin, append([]string{"-sock", filepath.Join(dir, p.name+".sock"), "-root", t.TempDir()}, p.extra...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		sock := filepath.Join(dir, p.name+".sock")
		waitFor(t, "the socket of "+p.name, 5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil })
	}
	t.Cleanup(func() {
		for _, n := range []string{"pv-example", "pv-dvp", "cv"} {
			_ = exec.Command(mossBin, "volume", "rm", "-f", n).Run()
		}
		for _, c := range procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		os.Remove(agentConfig())
		os.Remove(filepath.Join(dir, "dvp.sock"))
		os.Remove(filepath.Join(dir, "crashy.sock"))
		restartAgent(t)
	})
	restartAgent(t)
	waitFor(t, "the volume plugins", 20*time.Second, func() bool {
		ps := plugins(t)
		return ps["example"].Status == "running" && ps["dvp"].Status == "running" && ps["crashy"].Status == "running"
	})
	if out := mustMoss(t, "plugin", "ls"); !strings.Contains(out, filepath.Join(dir, "dvp.sock")) || !strings.Contains(out, exe) {
		t.Errorf("plugin ls does not show where the plugins are:\n%s", out)
	}
	for _, d := range []string{"example", "dvp"} {
		v := "pv-" + d
		mustMoss(t, "volume", "create", "-d", d, v)
		mustMoss(t, "run", "--rm", "-v", v+":/d", image, "sh", "-c", "echo "+d+" > /d/f")
		if out := mustMoss(t, "run", "--rm", "-v", v+":/d", image, "cat", "/d/f"); out != d+"\n" {
			t.Fatalf("%s: the volume holds %q", d, out)
		}
		if out := mustMoss(t, "volume", "ls", "--filter", "driver="+d, "-q"); out != v+"\n" {
			t.Fatalf("%s: volume ls --filter driver: %q", d, out)
		}
		mustMoss(t, "volume", "rm", v)
		if hasVolume(t, v) {
			t.Fatalf("%s: volume rm left %s", d, v)
		}
	}
	rmVolumes(t, "keepcv")
	mustMoss(t, "volume", "create", "keepcv")
	mustMoss(t, "run", "--rm", "-v", "keepcv:/d", image, "sh", "-c", "echo kept > /d/k")
	mustMoss(t, "volume", "create", "-d", "crashy", "cv")
	ctrs := mustMoss(t, "ps", "-aq")
	r := moss(t, "run", "--rm", "-v", "cv:/d", "-v", "keepcv:/k", image, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "error while mounting volume cv") || !strings.Contains(r.stderr, "crashy") {
		t.Fatalf("run with a plugin crashing in Mount: %+v", r)
	}
	if got := mustMoss(t, "ps", "-aq"); got != ctrs {
		t.Fatalf("run --rm left a container: %q → %q", ctrs, got)
	}
	if !hasVolume(t, "cv") {
		t.Fatalf("the volume of the crashed plugin is gone: %v", volumes(t))
	}
	if out := mustMoss(t, "run", "--rm", "-v", "keepcv:/d", image, "cat", "/d/k"); out != "kept\n" {
		t.Fatalf("the other volume after the failed start: %q", out)
	}
}

// TestRcloneDockerPlugin: a real Docker volume plugin, `rclone serve
// docker`, found by its socket in the plugin directory, gives a container
// a FUSE-mounted volume of rclone's local backend. It needs rclone,
// /dev/fuse usable by the user and a shared root mount (hack/prepare-host.sh).
func TestRcloneDockerPlugin(t *testing.T) {
	rclone, err := exec.LookPath("rclone")
	if err != nil {
		t.Skip("rclone is not installed")
	}
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		t.Skipf("FUSE is not usable: %v", err)
	} else {
		f.Close()
	}
	dir := filepath.Join(dataDir, "plugins")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	work, remote := t.TempDir(), t.TempDir()
	sock := filepath.Join(dir, "rclone.sock")
	cmd := exec.Command(rclone, "serve", "docker", "--socket-addr", sock, "--base-dir", filepath.Join(work, "mnt"),
		"--config", filepath.Join(work, "rclone.conf"), "--cache-dir", filepath.Join(work, "cache"))
	logf, err := os.Create(filepath.Join(work, "rclone.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command(mossBin, "volume", "rm", "-f", "rcv").Run()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
		os.Remove(sock)
		restartAgent(t)
	})
	waitFor(t, "rclone's socket", 10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil })
	restartAgent(t)
	waitFor(t, "the rclone plugin", 20*time.Second, func() bool { return plugins(t)["rclone"].Status == "running" })
	mustMoss(t, "volume", "create", "-d", "rclone", "-o", "type=local", "-o", "path="+remote, "rcv")
	if out := mustMoss(t, "run", "--rm", "-v", "rcv:/d", image, "sh", "-c", "grep ' /d ' /proc/mounts; echo via-rclone > /d/f"); !strings.Contains(out, "fuse") {
		t.Errorf("the volume is not rclone's FUSE mount: %q", out)
	}
	if got := readFile(filepath.Join(remote, "f")); got != "via-rclone\n" {
		t.Fatalf("rclone's remote holds %q\nrclone log:\n%s", got, readFile(filepath.Join(work, "rclone.log")))
	}
	mustMoss(t, "volume", "rm", "rcv")
	if hasVolume(t, "rcv") {
		t.Fatal("volume rm left rcv")
	}
}
