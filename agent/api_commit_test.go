package agent

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/moss-containers/moss/storage"
)

func TestApplyChanges(t *testing.T) {
	cfg := &container.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin", "A=0"}, WorkingDir: "/srv"}
	err := applyChanges(cfg, []string{
		`ENV A=1 B="two words" C=x\ y`, "ENV D the rest of it", `LABEL "com.x"="a b" k=v`, "WORKDIR sub\nUSER nobody",
		"EXPOSE 80 53/udp 8000-8001", "VOLUME /data", "STOPSIGNAL SIGINT", "HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost",
		"ONBUILD RUN true", "# a comment",
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"PATH=/bin", "A=1", "B=two words", "C=x y", "D=the rest of it"}; !reflect.DeepEqual(cfg.Env, want) {
		t.Errorf("env %q, want %q", cfg.Env, want)
	}
	if cfg.Labels["com.x"] != "a b" || cfg.Labels["k"] != "v" || cfg.WorkingDir != "/srv/sub" || cfg.User != "nobody" || cfg.StopSignal != "SIGINT" {
		t.Errorf("config %+v", cfg)
	}
	for _, p := range []string{"80/tcp", "53/udp", "8000/tcp", "8001/tcp"} {
		if _, ok := cfg.ExposedPorts[network.MustParsePort(p)]; !ok {
			t.Errorf("ports %v lack %s", cfg.ExposedPorts, p)
		}
	}
	hc := cfg.Healthcheck
	if hc == nil || !reflect.DeepEqual(hc.Test, []string{"CMD-SHELL", "wget -q localhost"}) || hc.Interval != 5*time.Second || hc.Retries != 3 {
		t.Errorf("healthcheck %+v", hc)
	}
	if !reflect.DeepEqual(cfg.OnBuild, []string{"RUN true"}) || !reflect.DeepEqual(cfg.Cmd, []string{"sh"}) {
		t.Errorf("onbuild %v cmd %v", cfg.OnBuild, cfg.Cmd)
	}
	// ENTRYPOINT clears a CMD not given with it, as docker's commit does.
	cfg = &container.Config{Cmd: []string{"sh"}}
	if err := applyChanges(cfg, []string{`ENTRYPOINT ["top"]`}); err != nil || cfg.Cmd != nil || !reflect.DeepEqual(cfg.Entrypoint, []string{"top"}) {
		t.Errorf("entrypoint alone: %+v, %v", cfg, err)
	}
	cfg = &container.Config{Cmd: []string{"sh"}}
	if err := applyChanges(cfg, []string{`CMD ["-b"]`, `ENTRYPOINT ["top"]`}); err != nil || !reflect.DeepEqual(cfg.Cmd, []string{"-b"}) {
		t.Errorf("entrypoint with cmd: %+v, %v", cfg, err)
	}
	for _, bad := range []string{"FROM busybox", "RUN true", "ENV", "ENV =x", `ENV A="open`, "EXPOSE 99999", "STOPSIGNAL SIGNOPE",
		"HEALTHCHECK --bogus=1 CMD x", "HEALTHCHECK wget", "ONBUILD FROM x", "VOLUME data", "BOGUS x"} {
		if err := applyChanges(&container.Config{}, []string{bad}); err == nil || !errors.Is(err, errInvalid) {
			t.Errorf("%q: %v, want an invalid-argument error", bad, err)
		}
	}
	if err := applyChanges(&container.Config{}, []string{"BOGUS x"}); !strings.Contains(err.Error(), "BOGUS is not a valid change command") {
		t.Errorf("message %q", err)
	}
}

func TestCommitConfig(t *testing.T) {
	var img dockerspec.DockerOCIImageConfig
	img.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	img.Volumes = map[string]struct{}{"/var/lib/x": {}}
	img.OnBuild = []string{"RUN echo"}
	img.Cmd = []string{"image-cmd"}
	ctr := &container.Config{
		Cmd: []string{"sh", "-c", "echo hi > /x"}, Env: []string{"PATH=/bin", "A=1"}, User: "www", WorkingDir: "/w",
		Labels: map[string]string{"from": "ctr"}, Hostname: "abc", Image: "busybox",
	}
	cfg, err := commitConfig(ctr, nil, []string{`CMD ["cat", "/x"]`, "ENV A=2", "LABEL commit=yes"}, img)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Cmd, []string{"cat", "/x"}) || !reflect.DeepEqual(cfg.Env, []string{"PATH=/bin", "A=2"}) || cfg.User != "www" || cfg.WorkingDir != "/w" {
		t.Errorf("config %+v", cfg)
	}
	if cfg.Labels["from"] != "ctr" || cfg.Labels["commit"] != "yes" || !reflect.DeepEqual(cfg.OnBuild, []string{"RUN echo"}) {
		t.Errorf("labels %v onbuild %v", cfg.Labels, cfg.OnBuild)
	}
	if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("image ports lost: %v", cfg.ExposedPorts)
	}
	if _, ok := cfg.Volumes["/var/lib/x"]; !ok {
		t.Errorf("image volumes lost: %v", cfg.Volumes)
	}
	if ctr.Env[1] != "A=1" || !reflect.DeepEqual(ctr.Cmd, []string{"sh", "-c", "echo hi > /x"}) {
		t.Errorf("the container's configuration changed: %+v", ctr)
	}
	// Without changes the container's command stays.
	cfg, err = commitConfig(ctr, nil, nil, img)
	if err != nil || !reflect.DeepEqual(cfg.Cmd, ctr.Cmd) {
		t.Errorf("no changes: %v, %v", cfg.Cmd, err)
	}
	// A request configuration wins; the container's fills the rest.
	cfg, err = commitConfig(ctr, &container.Config{Cmd: []string{"req"}, Env: []string{"B=3"}}, nil, img)
	if err != nil || !reflect.DeepEqual(cfg.Cmd, []string{"req"}) || !reflect.DeepEqual(cfg.Env, []string{"B=3", "PATH=/bin", "A=1"}) || cfg.User != "www" {
		t.Errorf("request config: %+v, %v", cfg, err)
	}
	if _, err := commitConfig(ctr, nil, []string{"NOPE x"}, img); !errors.Is(err, errInvalid) {
		t.Errorf("bad change: %v", err)
	}
}

func TestMossMountPoints(t *testing.T) {
	chs := []storage.Change{{Path: "/etc", Kind: 0}, {Path: "/etc/hostname", Kind: 1}, {Path: "/etc/hosts", Kind: 1}, {Path: "/tmp", Kind: 0}, {Path: "/tmp/x", Kind: 1}}
	got := mossMountPoints(chs)
	if want := map[string]bool{"/etc": true, "/etc/hostname": true, "/etc/hosts": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A real change in /etc keeps the directory, and a modified hosts file.
	chs = append(chs, storage.Change{Path: "/etc/passwd", Kind: 0}, storage.Change{Path: "/etc/resolv.conf", Kind: 0})
	got = mossMountPoints(chs)
	if want := map[string]bool{"/etc/hostname": true, "/etc/hosts": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("with /etc/passwd: got %v, want %v", got, want)
	}
}

func TestUntilTime(t *testing.T) {
	if got, err := untilTime("1h"); err != nil || time.Since(got) < 59*time.Minute {
		t.Errorf("1h: %v, %v", got, err)
	}
	if got, err := untilTime("1700000000"); err != nil || got.Unix() != 1700000000 {
		t.Errorf("timestamp: %v, %v", got, err)
	}
	if _, err := untilTime("soon"); err == nil {
		t.Error("bad until accepted")
	}
}
