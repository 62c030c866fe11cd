package agent

import (
	"net/http"

	"github.com/moby/moby/api/types/volume"
)

func (a *Agent) getVolumes(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	vs, err := a.volumeList(f)
	if err != nil {
		return err
	}
	out := volume.ListResponse{Volumes: make([]volume.Volume, 0, len(vs)), Warnings: []string{}}
	for _, v := range vs {
		out.Volumes = append(out.Volumes, a.apiVolume(v))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *Agent) getVolume(w http.ResponseWriter, r *http.Request) error {
	v, err := a.volume(r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.apiVolume(v))
	return nil
}

func (a *Agent) postVolumeCreate(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	v, err := a.createVolume(r.Context(), req.Name, req.Driver, req.DriverOpts, req.Labels)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.apiVolume(v))
	return nil
}

func (a *Agent) deleteVolume(w http.ResponseWriter, r *http.Request) error {
	if err := a.removeVolume(r.Context(), r.PathValue("name"), boolParam(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *Agent) postVolumesPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	for k := range f {
		switch k {
		case "label", "label!", "all":
		default:
			return kindErr(errInvalid, "invalid filter '%s'", k)
		}
	}
	deleted, space, err := a.pruneVolumes(r.Context(), f)
	if err != nil {
		return err
	}
	if deleted == nil {
		deleted = []string{}
	}
	writeJSON(w, http.StatusOK, volume.PruneReport{VolumesDeleted: deleted, SpaceReclaimed: space})
	return nil
}
