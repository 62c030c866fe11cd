package agent

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"

	"github.com/moss-containers/moss/storage"
)

// historyItem is an entry of docker history; Tags is null when empty,
// as docker sends it.
type historyItem struct {
	ID        string   `json:"Id"`
	Created   int64    `json:"Created"`
	CreatedBy string   `json:"CreatedBy"`
	Tags      []string `json:"Tags"`
	Size      int64    `json:"Size"`
	Comment   string   `json:"Comment"`
}

// getImageHistory is GET /images/{name}/history.
func (a *Agent) getImageHistory(w http.ResponseWriter, r *http.Request, name string) error {
	hist, err := a.store.History(name)
	if err != nil {
		return imageErr(err, name)
	}
	out := make([]historyItem, 0, len(hist))
	for _, h := range hist {
		item := historyItem{ID: h.ID, CreatedBy: h.CreatedBy, Tags: h.Tags, Size: h.Size, Comment: h.Comment}
		if !h.Created.IsZero() {
			item.Created = h.Created.Unix()
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// postImagesPrune is docker image prune: dangling images, or with the
// filter dangling=false every unused one; until= and label= (label!=)
// narrow the choice.
func (a *Agent) postImagesPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	all := false
	var until time.Time
	for k, vs := range f {
		switch k {
		case "dangling":
			for _, v := range vs {
				switch strings.ToLower(v) {
				case "true", "1":
				case "false", "0":
					all = true
				default:
					return kindErr(errInvalid, "invalid filter 'dangling=%s'", v)
				}
			}
		case "until":
			if len(vs) != 1 {
				return kindErr(errInvalid, "invalid filter 'until': give one value")
			}
			if until, err = untilTime(vs[0]); err != nil {
				return err
			}
		case "label", "label!":
		default:
			return kindErr(errInvalid, "invalid filter '%s'", k)
		}
	}
	a.releaseImages()
	match := func(img *storage.Image) bool {
		if !until.IsZero() && !img.Created.Before(until) {
			return false
		}
		labels := img.Config.Config.Labels
		return matchLabels(f["label"], labels) && unmatchLabels(f["label!"], labels)
	}
	untagged, deleted, space, err := a.store.PruneImages(all, match)
	if err != nil {
		return err
	}
	rep := image.PruneReport{ImagesDeleted: []image.DeleteResponse{}, SpaceReclaimed: space}
	for _, u := range untagged {
		rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Untagged: u})
		a.imageEvent(events.ActionUnTag, u, u)
	}
	for _, d := range deleted {
		rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Deleted: d})
		a.imageEvent(events.ActionDelete, d, "")
	}
	a.emit(events.ImageEventType, events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(space, 10)})
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// untilTime reads a prune filter's until: a timestamp (Unix or RFC 3339)
// or a duration before now ("24h").
func untilTime(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := parseTime(v)
	if err != nil || t.IsZero() {
		return time.Time{}, kindErr(errInvalid, "invalid filter 'until=%s': use a timestamp or a duration such as 24h", v)
	}
	return t, nil
}

// diskUsage is the answer of GET /system/df in the form of API versions
// before 1.52, which the docker CLI of this generation reads.
type diskUsage struct {
	LayersSize int64               `json:"LayersSize"`
	Images     []image.Summary     `json:"Images"`
	Containers []container.Summary `json:"Containers"`
	Volumes    []volume.Volume     `json:"Volumes"`
	BuildCache []build.CacheRecord `json:"BuildCache"`
}

// getSystemDF is docker system df: the images with their shared sizes and
// container counts, the containers with the size of their changes, the
// volumes with their sizes and users (a walk of each local volume's
// directory), and an empty build cache. type= picks some of them.
func (a *Agent) getSystemDF(w http.ResponseWriter, r *http.Request) error {
	want := map[string]bool{}
	for _, t := range r.URL.Query()["type"] {
		switch t {
		case "image", "container", "volume", "build-cache":
			want[t] = true
		default:
			return kindErr(errInvalid, "unknown object type: %s", t)
		}
	}
	all := len(want) == 0
	a.waitLayersDeleted()
	out := diskUsage{Images: []image.Summary{}, Containers: []container.Summary{}, Volumes: []volume.Volume{}, BuildCache: []build.CacheRecord{}}
	ctrs := a.snapshot()
	if all || want["image"] {
		imgs, err := a.store.Images()
		if err != nil {
			return err
		}
		u, err := a.store.ImagesUsage()
		if err != nil {
			return err
		}
		users := map[string]int64{}
		for _, c := range ctrs {
			users[c.ImageID]++
		}
		out.LayersSize = u.LayersSize
		for _, img := range imgs {
			s := image.Summary{
				ID: "sha256:" + img.ID, Created: img.Created.Unix(), Size: img.Size, SharedSize: u.Shared[img.ID],
				Containers: users[img.ID], RepoTags: img.RepoTags, RepoDigests: img.RepoDigests, Labels: img.Config.Config.Labels,
			}
			if img.Parent != "" {
				s.ParentID = "sha256:" + img.Parent
			}
			if s.RepoTags == nil {
				s.RepoTags = []string{}
			}
			if s.RepoDigests == nil {
				s.RepoDigests = []string{}
			}
			out.Images = append(out.Images, s)
		}
	}
	if all || want["container"] {
		now := time.Now()
		for _, c := range ctrs {
			c.mu.Lock()
			s := a.summary(c, now)
			gone := c.State.Status == "gone"
			c.mu.Unlock()
			if gone {
				continue
			}
			if n, err := a.store.ContainerSize(c.ID); err == nil {
				s.SizeRw = n
			}
			if img, err := a.store.Image(c.ImageID); err == nil {
				s.SizeRootFs = img.Size + s.SizeRw
			}
			out.Containers = append(out.Containers, s)
		}
	}
	if all || want["volume"] {
		vs, err := a.volumeList(map[string][]string{})
		if err != nil {
			return err
		}
		for _, v := range vs {
			users, pending := a.volumeUsers(v.Name)
			av := a.apiVolume(v)
			size := int64(-1)
			if v.Driver == "local" {
				size = int64(dirSize(v.Mountpoint))
			}
			av.UsageData = &volume.UsageData{Size: size, RefCount: int64(len(users) + pending)}
			out.Volumes = append(out.Volumes, av)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
