// Package build runs Dockerfile builds on Moss's own runtime and storage.
// buildkit's parser and instruction types read the Dockerfile; every
// instruction then makes an image through a Backend (the agent), which runs
// containers and commits their changes. This package owns the order of the
// steps, variable expansion and ARG scopes, multi-stage references,
// ONBUILD triggers, COPY and ADD, and the layer cache; it must not know how
// containers run or images are stored.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Config is an image's configuration with Docker's fields (HEALTHCHECK,
// ONBUILD, SHELL).
type Config = dockerspec.DockerOCIImageConfig

// Image is an image a build step starts from or makes.
type Image struct {
	ID     string
	Config Config
}

// Backend is what a build needs of the agent.
type Backend interface {
	// Base returns the image a FROM names; pull fetches it even when it
	// is there. Progress goes to out.
	Base(ctx context.Context, ref string, pull bool, out io.Writer) (*Image, error)
	// Lookup returns the image of an ID, nil when it is gone.
	Lookup(id string) *Image
	// Start makes a working container of base (nil: an empty root) with
	// its root file system mounted.
	Start(ctx context.Context, base *Image) (Step, error)
	// Derive records an image that is base with cfg and one more history
	// entry (createdBy), without a new layer.
	Derive(ctx context.Context, base *Image, cfg Config, createdBy string) (*Image, error)
	// Root mounts an image's root file system for reading (COPY --from);
	// release undoes it.
	Root(ctx context.Context, img *Image) (root string, release func(), err error)
	// Tag names an image.
	Tag(id, ref string) error
	// Remove deletes an image a failed build made.
	Remove(id string) error
}

// Step is a working container of a build step.
type Step interface {
	// Root is the container's mounted root file system.
	Root() string
	// Run runs argv with cfg's environment, user and working directory
	// (plus env, the build arguments in scope), with its output to out.
	// A non-zero exit is an *ExitError.
	Run(ctx context.Context, argv, env []string, cfg Config, network string, out io.Writer) error
	// Commit records the container's changes as a layer over its base,
	// with cfg and a history entry, and removes the container.
	Commit(ctx context.Context, cfg Config, createdBy string) (*Image, error)
	// Discard removes the container.
	Discard()
}

// ExitError is a RUN whose command failed: the Backend's Run returns it
// with the code, the build names the command.
type ExitError struct {
	Code int
	Cmd  []string
}

func (e *ExitError) Error() string {
	if len(e.Cmd) == 0 {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(e.Cmd, " "), e.Code)
}

// Options are one build's.
type Options struct {
	// ContextDir is the unpacked build context.
	ContextDir string
	// Dockerfile is its path in the context (default "Dockerfile").
	Dockerfile string
	Tags       []string
	Target     string
	// BuildArgs are --build-arg values; nil values come from nowhere
	// (declared but unset).
	BuildArgs map[string]*string
	Labels    map[string]string
	NoCache   bool
	Pull      bool
	Network   string
	// CacheDir holds the layer cache's index.
	CacheDir string
	// Out gets the build's progress, as Docker's legacy builder prints it.
	Out io.Writer
}

// Error is a build failure at a line of the Dockerfile.
type Error struct {
	Line int
	Err  error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("Dockerfile:%d: %v", e.Line, e.Err)
	}
	return e.Err.Error()
}
func (e *Error) Unwrap() error { return e.Err }

// ErrInvalid marks failures caused by the Dockerfile or the options.
var ErrInvalid = errors.New("invalid build")

// invalidError is an ErrInvalid with only its own message.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// builder is one build in progress.
type builder struct {
	b       Backend
	o       Options
	out     io.Writer
	lex     *shell.Lex
	cache   *cache
	ignore  *patternmatcher.PatternMatcher
	stages  []*Image // built so far, by index
	names   map[string]int
	step    int
	steps   int
	used    map[string]bool // build arguments some ARG declared
	metaEnv []string        // the global ARGs, for FROM
	// made are the images this build made, for removal when it fails:
	// a failed build leaves the store as it was.
	made []string
}

// Build runs the build and returns the final image, tagged.
func Build(ctx context.Context, b Backend, o Options) (*Image, error) {
	if o.Dockerfile == "" {
		o.Dockerfile = "Dockerfile"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	df, err := securejoin.SecureJoin(o.ContextDir, o.Dockerfile)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(df)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, invalid("Cannot locate specified Dockerfile: %s", o.Dockerfile)
		}
		return nil, err
	}
	res, err := parser.Parse(f)
	f.Close()
	if err != nil {
		return nil, lineError(err, invalid("%v", err))
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, lineError(err, invalid("%v", err))
	}
	if len(stages) == 0 {
		return nil, invalid("the Dockerfile has no FROM")
	}
	bl := &builder{
		b: b, o: o, out: o.Out, lex: shell.NewLex(res.EscapeToken),
		cache: &cache{dir: o.CacheDir, b: b}, names: map[string]int{}, used: map[string]bool{},
	}
	if bl.ignore, err = readIgnore(o.ContextDir); err != nil {
		return nil, err
	}
	last := len(stages) - 1
	if o.Target != "" {
		i, ok := instructions.HasStage(stages, o.Target)
		if !ok {
			return nil, invalid("failed to reach build target %s in Dockerfile", o.Target)
		}
		last = i
	}
	stages = stages[:last+1]
	for _, s := range stages {
		bl.steps += 1 + len(s.Commands)
	}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			v, err := bl.argValue(kv, bl.metaEnv)
			if err != nil {
				return nil, lineError(err, err)
			}
			bl.metaEnv = setEnv(bl.metaEnv, kv.Key, v)
		}
	}
	var img *Image
	defer func() {
		if img == nil {
			bl.undo()
		}
	}()
	for i := range stages {
		var si *Image
		if si, err = bl.stage(ctx, i, &stages[i]); err != nil {
			return nil, err
		}
		if i == len(stages)-1 {
			img = si
		}
	}
	if len(o.Labels) > 0 {
		cfg := img.Config
		cfg.Labels = copyMap(cfg.Labels)
		keys := sortedKeys(o.Labels)
		var parts []string
		for _, k := range keys {
			cfg.Labels[k] = o.Labels[k]
			parts = append(parts, fmt.Sprintf("%q=%q", k, o.Labels[k]))
		}
		labelled, err := bl.derive(ctx, img, cfg, "LABEL "+strings.Join(parts, " "))
		if err != nil {
			img = nil
			return nil, err
		}
		img = labelled
	}
	var unused []string
	for k := range o.BuildArgs {
		if !bl.used[k] && !predefinedArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		fmt.Fprintf(bl.out, "[Warning] One or more build-args %v were not consumed\n", unused)
	}
	fmt.Fprintf(bl.out, "Successfully built %s\n", short(img.ID))
	for _, t := range o.Tags {
		if err := b.Tag(img.ID, t); err != nil {
			img = nil
			return nil, err
		}
		fmt.Fprintf(bl.out, "Successfully tagged %s\n", withTag(t))
	}
	return img, nil
}

// predefinedArgs are Docker's proxy arguments, usable without an ARG.
var predefinedArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true, "ALL_PROXY": true, "all_proxy": true,
}

// lineError puts the Dockerfile line of a buildkit error in front.
func lineError(src, err error) error {
	var loc interface{ Location() []parser.Range }
	if errors.As(src, &loc) && len(loc.Location()) > 0 {
		return &Error{Line: loc.Location()[0].Start.Line, Err: err}
	}
	return err
}

func cmdLine(c instructions.Command) int {
	if l, ok := c.(interface{ Location() []parser.Range }); ok && len(l.Location()) > 0 {
		return l.Location()[0].Start.Line
	}
	return 0
}

// stageState is what the instructions of a stage change.
type stageState struct {
	img  *Image
	cfg  Config
	args []string // ARGs in scope, KEY=VALUE
	// cmdSet: this stage set CMD (an ENTRYPOINT then keeps it).
	cmdSet bool
}

func (bl *builder) stage(ctx context.Context, idx int, s *instructions.Stage) (*Image, error) {
	bl.step++
	base, _, err := bl.lex.ProcessWord(s.BaseName, shell.EnvsFromSlice(bl.metaEnv))
	if err != nil {
		return nil, &Error{Line: stageLine(s), Err: invalid("FROM %s: %v", s.BaseName, err)}
	}
	fmt.Fprintf(bl.out, "Step %d/%d : %s\n", bl.step, bl.steps, s.SourceCode)
	if s.Platform != "" {
		host := "linux/" + runtime.GOARCH
		env := append([]string{"BUILDPLATFORM=" + host, "TARGETPLATFORM=" + host}, bl.metaEnv...)
		p, _, _ := bl.lex.ProcessWord(s.Platform, shell.EnvsFromSlice(env))
		if p != host && !strings.HasPrefix(p, host+"/") {
			fmt.Fprintf(bl.out, "[Warning] FROM --platform=%s is ignored: this build runs for the host's platform, %s\n", p, host)
		}
	}
	st := &stageState{}
	switch i, ok := bl.names[strings.ToLower(base)]; {
	case ok:
		st.img = bl.stages[i]
	case strings.EqualFold(base, "scratch"):
	default:
		if base == "" {
			return nil, &Error{Line: stageLine(s), Err: invalid("FROM needs an image")}
		}
		if st.img, err = bl.b.Base(ctx, base, bl.o.Pull, bl.out); err != nil {
			return nil, &Error{Line: stageLine(s), Err: err}
		}
	}
	if st.img != nil {
		st.cfg = st.img.Config
		fmt.Fprintf(bl.out, " ---> %s\n", short(st.img.ID))
	} else {
		fmt.Fprintln(bl.out, " ---> (scratch)")
	}
	triggers := st.cfg.OnBuild
	st.cfg.OnBuild = nil
	if len(triggers) > 0 {
		fmt.Fprintf(bl.out, "# Executing %d build trigger", len(triggers))
		if len(triggers) > 1 {
			fmt.Fprint(bl.out, "s")
		}
		fmt.Fprintln(bl.out)
	}
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil || len(res.AST.Children) != 1 {
			return nil, &Error{Line: stageLine(s), Err: invalid("ONBUILD trigger %q of the base image: %v", t, err)}
		}
		c, err := instructions.ParseCommand(res.AST.Children[0])
		if err != nil {
			return nil, &Error{Line: stageLine(s), Err: invalid("ONBUILD trigger %q of the base image: %v", t, err)}
		}
		if err := bl.command(ctx, st, c); err != nil {
			return nil, &Error{Line: stageLine(s), Err: fmt.Errorf("ONBUILD trigger %q: %w", t, err)}
		}
	}
	for _, c := range s.Commands {
		bl.step++
		fmt.Fprintf(bl.out, "Step %d/%d : %s\n", bl.step, bl.steps, c)
		if err := bl.command(ctx, st, c); err != nil {
			var be *Error
			if errors.As(err, &be) {
				return nil, err
			}
			return nil, &Error{Line: cmdLine(c), Err: err}
		}
	}
	if st.img == nil {
		// FROM scratch and nothing else: an image without layers.
		if st.img, err = bl.derive(ctx, nil, st.cfg, ""); err != nil {
			return nil, err
		}
	}
	bl.stages = append(bl.stages, st.img)
	if s.Name != "" {
		bl.names[strings.ToLower(s.Name)] = idx
	}
	bl.names[fmt.Sprint(idx)] = idx
	return st.img, nil
}

func stageLine(s *instructions.Stage) int {
	if len(s.Location) > 0 {
		return s.Location[0].Start.Line
	}
	return 0
}

// expansionEnv is what ${VAR} sees: the image's environment, then the
// ARGs in scope (ENV wins over ARG, as Docker).
func (st *stageState) expansionEnv() []string {
	env := append([]string{}, st.args...)
	for _, e := range st.cfg.Env {
		k, v, _ := strings.Cut(e, "=")
		env = setEnv(env, k, v)
	}
	return env
}

// command runs one instruction of a stage.
func (bl *builder) command(ctx context.Context, st *stageState, c instructions.Command) error {
	if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		env := shell.EnvsFromSlice(st.expansionEnv())
		if err := ex.Expand(func(word string) (string, error) {
			w, _, err := bl.lex.ProcessWord(word, env)
			return w, err
		}); err != nil {
			return invalid("%v", err)
		}
	}
	cfg := st.cfg
	switch c := c.(type) {
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			v, err := bl.argValue(kv, st.expansionEnv())
			if err != nil {
				return err
			}
			st.args = setEnv(st.args, kv.Key, v)
		}
		return bl.show(st.img)
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(append([]string{}, cfg.Env...), kv.Key, kv.Value)
		}
		return bl.config(ctx, st, cfg, c)
	case *instructions.LabelCommand:
		cfg.Labels = copyMap(cfg.Labels)
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
		return bl.config(ctx, st, cfg, c)
	case *instructions.MaintainerCommand:
		return bl.config(ctx, st, cfg, c)
	case *instructions.UserCommand:
		cfg.User = c.User
		return bl.config(ctx, st, cfg, c)
	case *instructions.ExposeCommand:
		cfg.ExposedPorts = copySet(cfg.ExposedPorts)
		for _, p := range c.Ports {
			for _, w := range strings.Fields(p) {
				if !strings.Contains(w, "/") {
					w += "/tcp"
				}
				cfg.ExposedPorts[strings.ToLower(w)] = struct{}{}
			}
		}
		return bl.config(ctx, st, cfg, c)
	case *instructions.VolumeCommand:
		cfg.Volumes = copySet(cfg.Volumes)
		for _, v := range c.Volumes {
			if v == "" {
				return invalid("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
		return bl.config(ctx, st, cfg, c)
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
		return bl.config(ctx, st, cfg, c)
	case *instructions.ShellCommand:
		cfg.Shell = append([]string{}, c.Shell...)
		return bl.config(ctx, st, cfg, c)
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(append([]string{}, cfg.OnBuild...), c.Expression)
		return bl.config(ctx, st, cfg, c)
	case *instructions.HealthCheckCommand:
		h := *c.Health
		cfg.Healthcheck = &h
		return bl.config(ctx, st, cfg, c)
	case *instructions.CmdCommand:
		cfg.Cmd = st.commandLine(c.ShellDependantCmdLine)
		st.cmdSet = true
		return bl.config(ctx, st, cfg, c)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = st.commandLine(c.ShellDependantCmdLine)
		if !st.cmdSet {
			// As Docker: an inherited CMD does not survive a new ENTRYPOINT.
			cfg.Cmd = nil
		}
		return bl.config(ctx, st, cfg, c)
	case *instructions.WorkdirCommand:
		dir := c.Path
		if !path.IsAbs(dir) {
			dir = path.Join("/", cfg.WorkingDir, dir)
		}
		cfg.WorkingDir = path.Clean(dir)
		return bl.layer(ctx, st, cfg, "/bin/sh -c #(nop) "+c.String(), "", func(s Step) error {
			p, err := securejoin.SecureJoin(s.Root(), cfg.WorkingDir)
			if err != nil {
				return err
			}
			return os.MkdirAll(p, 0o755)
		})
	case *instructions.RunCommand:
		if len(c.FlagsUsed) > 0 {
			return invalid("RUN --%s needs BuildKit, which Moss's builder is not", c.FlagsUsed[0])
		}
		argv := st.commandLine(c.ShellDependantCmdLine)
		if len(argv) == 0 {
			return invalid("RUN needs a command")
		}
		argsKey := strings.Join(st.args, "\n")
		// The history shows the command as it ran, in the stage's shell.
		return bl.layer(ctx, st, cfg, strings.Join(argv, " "), argsKey, func(s Step) error {
			err := s.Run(ctx, argv, st.args, cfg, bl.o.Network, bl.out)
			var ee *ExitError
			if errors.As(err, &ee) {
				return &ExitError{Code: ee.Code, Cmd: argv}
			}
			return err
		})
	case *instructions.CopyCommand:
		return bl.copy(ctx, st, cfg, copySpec{
			sources: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath, from: c.From,
			chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns,
		})
	case *instructions.AddCommand:
		if c.Checksum != "" {
			return invalid("ADD --checksum needs BuildKit, which Moss's builder is not")
		}
		return bl.copy(ctx, st, cfg, copySpec{
			sources: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
			chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, add: true,
		})
	}
	return invalid("%s is not supported", c.Name())
}

// commandLine is a CMD, ENTRYPOINT or RUN's argv: the shell form runs in
// the stage's SHELL.
func (st *stageState) commandLine(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...)
	}
	sh := st.cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, sh...), strings.Join(c.CmdLine, " "))
}

// argValue is an ARG's value: the --build-arg given for it, else its
// default (expanded), else unset ("").
func (bl *builder) argValue(kv instructions.KeyValuePairOptional, env []string) (string, error) {
	bl.used[kv.Key] = true
	if v, ok := bl.o.BuildArgs[kv.Key]; ok && v != nil {
		return *v, nil
	}
	if kv.Value == nil {
		return "", nil
	}
	v, _, err := bl.lex.ProcessWord(*kv.Value, shell.EnvsFromSlice(env))
	if err != nil {
		return "", invalid("ARG %s: %v", kv.Key, err)
	}
	return v, nil
}

func (bl *builder) show(img *Image) error {
	if img != nil {
		fmt.Fprintf(bl.out, " ---> %s\n", short(img.ID))
	}
	return nil
}

// config is an instruction that only changes the configuration: a new
// image without a layer (cached like the others).
func (bl *builder) config(ctx context.Context, st *stageState, cfg Config, c instructions.Command) error {
	createdBy := "/bin/sh -c #(nop)  " + fmt.Sprint(c)
	key := bl.cache.key(st.img, createdBy, "")
	if img := bl.cache.get(key, bl.o.NoCache); img != nil {
		fmt.Fprintln(bl.out, " ---> Using cache")
		st.img, st.cfg = img, img.Config
		return bl.show(img)
	}
	img, err := bl.derive(ctx, st.img, cfg, createdBy)
	if err != nil {
		return err
	}
	bl.cache.put(key, img.ID)
	st.img, st.cfg = img, cfg
	return bl.show(img)
}

func (bl *builder) derive(ctx context.Context, base *Image, cfg Config, createdBy string) (*Image, error) {
	img, err := bl.b.Derive(ctx, base, cfg, createdBy)
	if err == nil {
		bl.made = append(bl.made, img.ID)
	}
	return img, err
}

// undo removes what a failed build made, newest first.
func (bl *builder) undo() {
	for i := len(bl.made) - 1; i >= 0; i-- {
		_ = bl.b.Remove(bl.made[i])
	}
}

// layer is an instruction that changes the file system: do runs in a
// working container of the stage's image, which is then committed with
// createdBy in its history. The cache key is the parent, createdBy and
// inputs (the digest of
// what is copied, or the build arguments a RUN sees).
func (bl *builder) layer(ctx context.Context, st *stageState, cfg Config, createdBy, inputs string, do func(Step) error) error {
	key := bl.cache.key(st.img, createdBy, inputs)
	if img := bl.cache.get(key, bl.o.NoCache); img != nil {
		fmt.Fprintln(bl.out, " ---> Using cache")
		st.img, st.cfg = img, img.Config
		return bl.show(img)
	}
	s, err := bl.b.Start(ctx, st.img)
	if err != nil {
		return err
	}
	if err := do(s); err != nil {
		s.Discard()
		return err
	}
	img, err := s.Commit(ctx, cfg, createdBy)
	if err != nil {
		return err
	}
	bl.made = append(bl.made, img.ID)
	bl.cache.put(key, img.ID)
	st.img, st.cfg = img, cfg
	return bl.show(img)
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			out := append([]string{}, env...)
			out[i] = k + "=" + v
			return out
		}
	}
	return append(append([]string{}, env...), k+"="+v)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copySet(m map[string]struct{}) map[string]struct{} {
	out := make(map[string]struct{}, len(m))
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// short is an image ID as the build prints it.
func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// readIgnore reads the context's .dockerignore.
func readIgnore(dir string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, invalid(".dockerignore: %v", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, invalid(".dockerignore: %v", err)
	}
	return pm, nil
}

// withTag is a reference as Docker prints a tag: with ":latest" when it
// has none.
func withTag(ref string) string {
	name := ref[strings.LastIndex(ref, "/")+1:]
	if strings.ContainsAny(name, ":@") {
		return ref
	}
	return ref + ":latest"
}
