package agent

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// eventRecent is how many past events the agent keeps for --since.
const eventRecent = 1024

// eventMessage is Docker's event with the fields that clients of API
// versions before 1.52 still read (status, id, from).
type eventMessage struct {
	events.Message
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
}

// eventBus fans events out to the /events streams and keeps the recent
// ones. A subscriber that falls behind by a full buffer is dropped rather
// than slowing down the agent.
type eventBus struct {
	mu     sync.Mutex
	recent []eventMessage // a ring of eventRecent, oldest at next once full
	next   int
	subs   map[chan eventMessage]struct{}
}

func (b *eventBus) publish(m eventMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.recent) < eventRecent {
		b.recent = append(b.recent, m)
	} else {
		b.recent[b.next] = m
		b.next = (b.next + 1) % eventRecent
	}
	for ch := range b.subs {
		select {
		case ch <- m:
		default:
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// subscribe returns the recent events and a channel of the next ones.
func (b *eventBus) subscribe() ([]eventMessage, chan eventMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = map[chan eventMessage]struct{}{}
	}
	ch := make(chan eventMessage, 256)
	b.subs[ch] = struct{}{}
	past := append([]eventMessage(nil), b.recent[b.next:]...)
	return append(past, b.recent[:b.next]...), ch
}

func (b *eventBus) unsubscribe(ch chan eventMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		close(ch)
	}
}

// emit publishes an event of typ about the object id.
func (a *Agent) emit(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	m := eventMessage{Message: events.Message{
		Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano(),
	}}
	if typ == events.ContainerEventType {
		m.Status, m.ID, m.From = string(action), id, attrs["image"]
	}
	a.events.publish(m)
}

// containerEvent publishes an event about c, with its name, image and
// labels as attributes (as docker does) and extra ones.
func (a *Agent) containerEvent(c *Container, action events.Action, extra map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a.containerEventLocked(c, action, extra)
}

// containerEventLocked is containerEvent for callers that hold c.mu.
func (a *Agent) containerEventLocked(c *Container, action events.Action, extra map[string]string) {
	attrs := map[string]string{"name": c.Name, "image": c.Image}
	for k, v := range c.Config.Labels {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	a.emit(events.ContainerEventType, action, c.ID, attrs)
}

// imageEvent publishes an event about an image.
func (a *Agent) imageEvent(action events.Action, id, name string) {
	attrs := map[string]string{}
	if name != "" {
		attrs["name"] = name
	}
	a.emit(events.ImageEventType, action, id, attrs)
}

// eventFilter is the filters of an /events request.
type eventFilter map[string][]string

func (f eventFilter) match(m eventMessage) bool {
	any := func(key string, vals ...string) bool {
		want, ok := f[key]
		if !ok {
			return true
		}
		for _, w := range want {
			for _, v := range vals {
				if v != "" && (w == v || (key == "container" && len(w) >= 12 && strings.HasPrefix(v, w))) {
					return true
				}
			}
		}
		return false
	}
	attrs := m.Actor.Attributes
	action := string(m.Action)
	if i := strings.Index(action, ":"); i > 0 {
		action = action[:i] // exec_start: sh → exec_start
	}
	if !any("type", string(m.Type)) || !any("event", action, string(m.Action)) {
		return false
	}
	if _, ok := f["container"]; ok && (m.Type != events.ContainerEventType || !any("container", m.Actor.ID, attrs["name"])) {
		return false
	}
	if _, ok := f["image"]; ok && !any("image", attrs["image"], m.Actor.ID, attrs["name"]) {
		return false
	}
	return matchLabels(f["label"], attrs)
}

// getEvents streams events as JSON objects: the recent ones after since,
// then new ones, until until (or the client leaves).
func (a *Agent) getEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	since, err := parseTime(q.Get("since"))
	if err != nil {
		return err
	}
	until, err := parseTime(q.Get("until"))
	if err != nil {
		return err
	}
	raw, err := parseFilters(r)
	if err != nil {
		return err
	}
	for k := range raw {
		switch k {
		case "type", "event", "container", "image", "label":
		default:
			return kindErr(errInvalid, "invalid filter '%s'", k)
		}
	}
	f := eventFilter(raw)
	past, ch := a.events.subscribe()
	defer a.events.unsubscribe(ch)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	flush()
	enc := json.NewEncoder(w)
	in := func(m eventMessage) bool {
		t := time.Unix(0, m.TimeNano)
		return (since.IsZero() || !t.Before(since)) && (until.IsZero() || !t.After(until))
	}
	if !since.IsZero() {
		for _, m := range past {
			if in(m) && f.match(m) {
				if enc.Encode(m) != nil {
					return nil
				}
			}
		}
		flush()
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return nil // fell behind
			}
			if in(m) && f.match(m) {
				if enc.Encode(m) != nil {
					return nil
				}
				flush()
			}
		case <-deadline:
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}
