package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
)

func TestSystemDF(t *testing.T) {
	created := time.Now().Add(-3 * 24 * time.Hour).Unix()
	du := diskUsage{
		LayersSize: 6000000,
		Images: []image.Summary{
			{ID: "sha256:" + strings.Repeat("a", 64), RepoTags: []string{"busybox:latest"}, Created: created, Size: 4000000, SharedSize: 4000000, Containers: 1},
			{ID: "sha256:" + strings.Repeat("b", 64), Created: created, Size: 6000000, SharedSize: 4000000},
		},
		Containers: []container.Summary{
			{ID: strings.Repeat("1", 64), Names: []string{"/web"}, Image: "busybox", Command: "httpd -f", Created: created, State: "running", Status: "Up 3 days", SizeRw: 1000},
			{ID: strings.Repeat("2", 64), Names: []string{"/old"}, Image: "busybox", Command: "true", Created: created, State: "exited", Status: "Exited (0) 3 days ago", SizeRw: 3000},
		},
		Volumes: []volume.Volume{
			{Name: "data", Driver: "local", UsageData: &volume.UsageData{Size: 2048, RefCount: 1}},
			{Name: "spare", Driver: "local", UsageData: &volume.UsageData{Size: 1024, RefCount: 0}},
		},
	}
	f := newFakeAgent(t)
	f.json("GET /system/df", http.StatusOK, du)
	r := moss("", "system", "df")
	want := "" +
		"TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n" +
		"Images          2         1         6MB       6MB (100%)\n" +
		"Containers      2         1         4kB       3kB (75%)\n" +
		"Local Volumes   2         1         3.072kB   1.024kB (33%)\n" +
		"Build Cache     0         0         0B        0B\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("%+v\nwant:\n%s", r, want)
	}
	r = moss("", "system", "df", "--format", "{{.Type}}={{.Size}}")
	if r.code != 0 || r.stdout != "Images=6MB\nContainers=4kB\nLocal Volumes=3.072kB\nBuild Cache=0B\n" {
		t.Errorf("format: %+v", r)
	}
	r = moss("", "system", "df", "-v")
	for _, w := range []string{
		"Images space usage:\n\nREPOSITORY   TAG       IMAGE ID       CREATED      SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS\n" +
			"busybox      latest    aaaaaaaaaaaa   3 days ago   4MB       4MB           0B            1\n" +
			"<none>       <none>    bbbbbbbbbbbb   3 days ago   6MB       4MB           2MB           0\n",
		"\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND      LOCAL VOLUMES   SIZE      CREATED      STATUS                  NAMES\n" +
			"111111111111   busybox   \"httpd -f\"   0               1kB       3 days ago   Up 3 days               web\n",
		"\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\ndata          1         2.05kB\nspare         0         1.02kB\n",
		"\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n",
	} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("df -v lacks\n%s\nin:\n%s", w, r.stdout)
		}
	}
	r = moss("", "system", "df", "-v", "--format", "{{range .Images}}{{.ID}} {{end}}")
	if r.code != 0 || r.stdout != "aaaaaaaaaaaa bbbbbbbbbbbb \n" {
		t.Errorf("df -v --format: %+v", r)
	}
}
