package cli

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"github.com/spf13/cobra"
)

// addDiskUsageCommands registers `moss system` with df, and info and
// events as docker has them there too.
func (a *app) addDiskUsageCommands(root *cobra.Command) {
	grp := group("system", "Manage Moss")
	grp.AddCommand(a.systemDFCmd(), a.infoCmd(), a.eventsCmd())
	root.AddCommand(grp)
}

// diskUsage is the agent's /system/df answer (the form before API 1.52).
type diskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

const (
	dfTable          = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
	dfImageTable     = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
	dfContainerTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
	dfVolumeTable    = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
	dfCacheTable     = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}"
)

var dfHeaders = map[string]string{
	"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE",
	// the verbose tables
	"ID": "ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES", "RunningFor": "CREATED",
	"Status": "STATUS", "Names": "NAMES", "Name": "VOLUME NAME", "Links": "LINKS", "CacheType": "CACHE TYPE",
	"CreatedSince": "CREATED", "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED",
}

func (a *app) systemDFCmd() *cobra.Command {
	var verbose bool
	var format string
	c := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show Moss disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			var du diskUsage
			if err := cl.call(http.MethodGet, "/system/df", nil, nil, &du); err != nil {
				return err
			}
			if verbose {
				return a.dfVerbose(&du, format)
			}
			return render(a.out, listFormat(format, dfTable), dfRows(&du), dfHeaders)
		},
	}
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	c.Flags().StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	return c
}

// dfRow is one line of system df: a kind of object and its totals.
type dfRow struct {
	typ                 string
	total, active       int
	size, reclaimable   int64
	percent, noPercents bool
}

func (r dfRow) Type() string       { return r.typ }
func (r dfRow) TotalCount() string { return strconv.Itoa(r.total) }
func (r dfRow) Active() string     { return strconv.Itoa(r.active) }
func (r dfRow) Size() string       { return units.HumanSize(float64(r.size)) }

// Reclaimable is the space that removing the unused objects frees, with
// its share of the total, as docker prints it.
func (r dfRow) Reclaimable() string {
	if r.size > 0 && !r.noPercents {
		return fmt.Sprintf("%s (%v%%)", units.HumanSize(float64(r.reclaimable)), (r.reclaimable*100)/r.size)
	}
	return units.HumanSize(float64(r.reclaimable))
}

// MarshalJSON gives `--format json` docker's field names.
func (r dfRow) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`{"Active":%q,"Reclaimable":%q,"Size":%q,"TotalCount":%q,"Type":%q}`,
		r.Active(), r.Reclaimable(), r.Size(), r.TotalCount(), r.Type())), nil
}

// dfRows sums up images, containers, volumes and the build cache as the
// docker CLI does from the same answer.
func dfRows(du *diskUsage) []interface{} {
	imgs := dfRow{typ: "Images", total: len(du.Images), size: du.LayersSize}
	var used int64
	for _, i := range du.Images {
		if i.Containers > 0 {
			imgs.active++
			if i.Size != -1 && i.SharedSize != -1 {
				used += i.Size - i.SharedSize
			}
		}
	}
	imgs.reclaimable = du.LayersSize - used
	ctrs := dfRow{typ: "Containers", total: len(du.Containers)}
	for _, c := range du.Containers {
		ctrs.size += c.SizeRw
		if c.State == "running" || c.State == "paused" {
			ctrs.active++
		} else {
			ctrs.reclaimable += c.SizeRw
		}
	}
	vols := dfRow{typ: "Local Volumes", total: len(du.Volumes)}
	for _, v := range du.Volumes {
		if v.UsageData == nil {
			continue
		}
		if v.UsageData.RefCount > 0 {
			vols.active++
		}
		if v.UsageData.Size != -1 {
			vols.size += v.UsageData.Size
			if v.UsageData.RefCount == 0 {
				vols.reclaimable += v.UsageData.Size
			}
		}
	}
	cache := dfRow{typ: "Build Cache", total: len(du.BuildCache), noPercents: true}
	for _, bc := range du.BuildCache {
		if bc.InUse {
			cache.active++
		}
		if !bc.Shared {
			cache.size += bc.Size
			if !bc.InUse {
				cache.reclaimable += bc.Size
			}
		}
	}
	return []interface{}{imgs, ctrs, vols, cache}
}

// dfVerbose prints the tables of system df -v, or a template applied to
// {Images, Containers, Volumes, BuildCache} lists of rows.
func (a *app) dfVerbose(du *diskUsage, format string) error {
	var images, ctrs, vols, cache []interface{}
	for _, s := range du.Images {
		repo, tag := "<none>", "<none>"
		if len(s.RepoTags) > 0 {
			if r, t := splitRepoTag(s.RepoTags[0]); t != "" {
				repo, tag = familiarName(r), t
			}
		}
		images = append(images, imageRow{s: s, repo: repo, tag: tag, digest: "<none>", trunc: true})
	}
	for _, c := range du.Containers {
		c.SizeRootFs = 0 // docker shows no virtual size here
		ctrs = append(ctrs, psRow{s: c, trunc: true})
	}
	for _, v := range du.Volumes {
		vols = append(vols, dfVolumeRow{volumeRow{v}})
	}
	for _, bc := range du.BuildCache {
		cache = append(cache, cacheRow{bc})
	}
	if f := strings.TrimSpace(format); f != "" && f != "table" {
		if f == "json" {
			f = "{{json .}}"
		}
		t, err := parseTemplate(f)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, map[string]interface{}{"Images": images, "Containers": ctrs, "Volumes": vols, "BuildCache": cache}); err != nil {
			return &statusError{code: exitFailure, msg: fmt.Sprintf("moss: template: %v", err)}
		}
		if buf.Len() > 0 && !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
			buf.WriteByte('\n')
		}
		_, err = a.out.Write(buf.Bytes())
		return err
	}
	sections := []struct {
		title, format string
		rows          []interface{}
		headers       map[string]string
	}{
		{"Images space usage:\n\n", dfImageTable, images, imageHeaders},
		{"\nContainers space usage:\n\n", dfContainerTable, ctrs, map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"}},
		{"\nLocal Volumes space usage:\n\n", dfVolumeTable, vols, dfHeaders},
		{fmt.Sprintf("\nBuild cache usage: %s\n\n", units.HumanSize(float64(dfRows(du)[3].(dfRow).size))), dfCacheTable, cache, map[string]string{"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED", "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}},
	}
	for _, s := range sections {
		fmt.Fprint(a.out, s.title)
		if err := render(a.out, s.format, s.rows, s.headers); err != nil {
			return err
		}
	}
	return nil
}

// dfVolumeRow is a volume of system df -v: its size as lists print sizes.
type dfVolumeRow struct{ volumeRow }

func (r dfVolumeRow) Size() string {
	if r.v.UsageData == nil || r.v.UsageData.Size == -1 {
		return "N/A"
	}
	return humanSize(r.v.UsageData.Size)
}

// cacheRow is a build cache record (Moss keeps none yet; the table has
// docker's columns).
type cacheRow struct{ r build.CacheRecord }

func (c cacheRow) ID() string            { return shortID(c.r.ID) }
func (c cacheRow) CacheType() string     { return c.r.Type }
func (c cacheRow) Size() string          { return humanSize(c.r.Size) }
func (c cacheRow) CreatedSince() string  { return sinceUnix(c.r.CreatedAt.Unix()) }
func (c cacheRow) LastUsedSince() string { return "" }
func (c cacheRow) UsageCount() string    { return strconv.Itoa(c.r.UsageCount) }
func (c cacheRow) Shared() string        { return strconv.FormatBool(c.r.Shared) }
