// Package reload makes the sidecar's configuration live: a Watcher reads
// it again when its file or one of its secret files changes, or when the
// process is signalled (SIGHUP), and hands each part of the sidecar the
// settings it takes without a restart.
//
// Invariants:
//
//   - A new configuration is loaded and validated exactly as `run` loads
//     it (config.Load). One that does not load is logged with every
//     problem (and its line in the file) and changes nothing.
//   - A setting changes live only when a part has declared it (Part.Keys)
//     and that part accepted it. Any other changed setting is logged as
//     needing a restart and keeps its running value until then; the rest
//     of the change still applies, so that a rotated secret never waits on
//     an unrelated edit. paysidecar_config_restart_required says a restart
//     is pending.
//   - The live configuration is the one the parts run with: its hash
//     (config.HashSettings, which shows no secret) is logged at every
//     change and is the one paysidecar_config_info series at 1.
//   - Each part switches its settings at once (an atomic pointer or a
//     lock in the part), so a request or a delivery in flight sees the old
//     settings or the new, never a mix within the part. Parts switch one
//     after another, in the order given.
//   - One goroutine, owned by the Watcher between Start and Close, watches
//     and reloads; reloads never run concurrently.
//
// Files are watched through their directories, so that an editor that
// saves by renaming a new file over the old one, and Kubernetes, which
// updates a mounted ConfigMap or Secret by swapping a "..data" symlink,
// are both seen. A change is acted on once the directory has been quiet
// for a moment, and only when the content of a watched file did change.
package reload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// ErrRestart is returned (wrapped) by a Part's Apply when the change it
// was given cannot take effect without a restart (turning webhook
// delivery on or off, say). The part changes nothing and its keys are
// reported as needing a restart.
var ErrRestart = errors.New("needs a restart")

// Part is a part of the sidecar that takes some settings live.
type Part struct {
	// Name names the part in logs.
	Name string
	// Keys are the settings the part takes live: a key as
	// config.Config.Settings names it ("webhook.url"), or a prefix ending
	// in "." for every key below it ("plugins.wechat_jsapi.settings.").
	Keys []string
	// Apply gives the part the new configuration; it is called only when
	// one of Keys changed, and reads only those. It returns an error,
	// having changed nothing, when it cannot apply them: one wrapping
	// ErrRestart when a restart would.
	Apply func(ctx context.Context, cfg config.Config) error
}

func (p Part) owns(key string) bool {
	for _, k := range p.Keys {
		if key == k || (strings.HasSuffix(k, ".") && strings.HasPrefix(key, k)) {
			return true
		}
	}
	return false
}

// Options configures a Watcher.
type Options struct {
	// Path is the configuration file watched for changes; empty when the
	// sidecar runs without one (its secret files are still watched).
	Path string
	// Load reads and validates the configuration: config.Load with the
	// file and the environment `run` used. Required.
	Load func() (config.Config, error)
	// Signals, when not nil, delivers the signals (SIGHUP) that ask for a
	// reload. The caller registers and stops it (signal.Notify); a signal
	// that arrives before Start is acted on at Start.
	Signals <-chan os.Signal
	// Quiet is how long a watched directory must be quiet before a change
	// is acted on. Default 100 ms.
	Quiet time.Duration
	// Telemetry is the watcher's logger, registerer and clock.
	Telemetry telemetry.Bundle
}

// Result says what one reload did.
type Result struct {
	// Outcome is OutcomeApplied, OutcomeUnchanged, OutcomeInvalid or
	// OutcomeFailed.
	Outcome string
	// Hash is the hash of the live configuration after the reload.
	Hash string
	// Applied lists the settings that changed live.
	Applied []string
	// Restart lists the changed settings that wait for a restart.
	Restart []string
	// Failed lists the settings a part could not apply.
	Failed []string
	// Err is why the configuration did not load, or what a part said.
	Err error

	reasons []string // why parts wait for a restart
}

// Outcomes of a reload, the result label of paysidecar_config_reloads_total.
const (
	// OutcomeApplied: the configuration loaded and something changed live.
	OutcomeApplied = "applied"
	// OutcomeUnchanged: the configuration loaded and nothing changed live
	// (nothing changed, or only settings that need a restart).
	OutcomeUnchanged = "unchanged"
	// OutcomeInvalid: the configuration did not load; nothing changed.
	OutcomeInvalid = "invalid"
	// OutcomeFailed: a part could not apply its settings; the others
	// did.
	OutcomeFailed = "failed"
)

// Watcher reloads the configuration. Create it with New; Start runs it
// and Close stops it. Reload may also be called directly.
type Watcher struct {
	opts  Options
	parts []Part
	log   *slog.Logger
	now   func() time.Time
	m     *metrics

	mu     sync.Mutex // serializes reloads
	live   map[string]any
	hash   string
	files  []string // watched files: the configuration and its secret files
	print  string   // fingerprint of the files' content at the last reload
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Watcher of the configuration current, which the sidecar
// was started with, handing changes to parts.
func New(current config.Config, parts []Part, opts Options) (*Watcher, error) {
	if opts.Load == nil {
		return nil, errors.New("reload: Load is required")
	}
	if opts.Quiet <= 0 {
		opts.Quiet = 100 * time.Millisecond
	}
	tel := opts.Telemetry.WithDefaults()
	w := &Watcher{opts: opts, parts: slices.Clone(parts), log: tel.Logger, now: tel.Now}
	w.live = current.Settings()
	w.hash = config.HashSettings(w.live)
	w.files = watchedFiles(opts.Path, current)
	w.print = fingerprint(w.files)
	m, err := newMetrics(tel)
	if err != nil {
		return nil, err
	}
	w.m = m
	w.m.setLive("", w.hash)
	return w, nil
}

func watchedFiles(path string, cfg config.Config) []string {
	files := cfg.SecretFiles()
	if path != "" {
		files = append(files, path)
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// Hash returns the hash of the live configuration.
func (w *Watcher) Hash() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hash
}

// Start applies what changed in the files since New, then watches them
// and the signals in a goroutine the Watcher owns until Close.
func (w *Watcher) Start(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("reload: watch files: %w", err)
	}
	dirs := map[string]bool{}
	w.mu.Lock()
	w.watchDirs(fw, dirs)
	w.mu.Unlock()
	// A first look, once the watch is on: the files may have changed
	// while the sidecar started.
	w.reload(ctx, triggerStart)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel, w.done = cancel, make(chan struct{})
	w.log.Info("configuration live", "hash", w.Hash(), "file", w.opts.Path)
	go func() {
		defer close(w.done)
		defer func() { _ = fw.Close() }()
		w.run(ctx, fw, dirs)
	}()
	return nil
}

// Close stops watching and waits for a reload under way.
func (w *Watcher) Close() error {
	if w.cancel == nil {
		return nil
	}
	w.cancel()
	<-w.done
	return nil
}

// watchDirs makes fw watch the directories of w.files and no other,
// recording them in dirs. Called with w.mu held.
func (w *Watcher) watchDirs(fw *fsnotify.Watcher, dirs map[string]bool) {
	want := map[string]bool{}
	for _, f := range w.files {
		want[filepath.Dir(f)] = true
		// A link to a file elsewhere changes there.
		if real, err := filepath.EvalSymlinks(f); err == nil {
			want[filepath.Dir(real)] = true
		}
	}
	for d := range dirs {
		if !want[d] {
			_ = fw.Remove(d)
			delete(dirs, d)
		}
	}
	for d := range want {
		if dirs[d] {
			continue
		}
		if err := fw.Add(d); err != nil {
			w.log.Warn("configuration: cannot watch a directory; changes there need SIGHUP", "dir", d, "error", err)
			continue
		}
		dirs[d] = true
	}
}

func (w *Watcher) run(ctx context.Context, fw *fsnotify.Watcher, dirs map[string]bool) {
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			quiet.Stop()
			return
		case sig := <-w.opts.Signals:
			w.log.Info("configuration reload requested", "signal", sig.String())
			w.reload(ctx, triggerSignal)
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			w.log.Debug("configuration directory changed", "event", ev.String())
			quiet.Reset(w.opts.Quiet)
			continue
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			w.log.Warn("configuration: watching files failed; changes may need SIGHUP", "error", err)
			continue
		case <-quiet.C:
			w.mu.Lock()
			changed := fingerprint(w.files) != w.print
			w.mu.Unlock()
			if !changed {
				continue
			}
			w.reload(ctx, triggerFile)
		}
		w.mu.Lock()
		w.watchDirs(fw, dirs)
		w.mu.Unlock()
	}
}

// fingerprint hashes the content of files, so that a directory event that
// changed none of them (a swap file, a touch) causes no reload.
func fingerprint(files []string) string {
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(h, "%s: %v\n", f, err)
			continue
		}
		fmt.Fprintf(h, "%s: %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Reload loads the configuration now and applies what changed, as a
// signal does.
func (w *Watcher) Reload(ctx context.Context) Result {
	return w.reload(ctx, triggerSignal)
}

// trigger is what asked for a reload.
type trigger int

const (
	triggerSignal trigger = iota // a signal or a call of Reload
	triggerFile                  // a watched file changed
	triggerStart                 // the watch started
)

func (w *Watcher) reload(ctx context.Context, why trigger) Result {
	w.mu.Lock()
	defer w.mu.Unlock()
	var res Result
	for attempt := 1; ; attempt++ {
		var settled bool
		res, settled = w.apply(ctx, attempt == maxReads)
		if settled {
			break
		}
		// A file changed while it was read: read it again once it
		// has been quiet.
		t := time.NewTimer(w.opts.Quiet)
		select {
		case <-ctx.Done():
			t.Stop()
			return Result{Outcome: OutcomeUnchanged, Hash: w.hash}
		case <-t.C:
		}
	}
	if why == triggerStart && res.Outcome == OutcomeUnchanged && len(res.Restart) == 0 {
		// The usual case: nothing changed since the sidecar read its
		// configuration; not a reload anyone asked for.
		return res
	}
	w.m.reloads.WithLabelValues(res.Outcome).Inc()
	if res.Outcome == OutcomeInvalid {
		w.m.lastOK.Set(0)
	} else {
		w.m.lastOK.Set(1)
		w.m.lastAt.Set(float64(w.now().UnixNano()) / 1e9)
	}
	if len(res.Restart) > 0 {
		w.m.restart.Set(1)
	} else {
		w.m.restart.Set(0)
	}
	switch {
	case res.Outcome == OutcomeInvalid:
		w.log.Error("configuration not reloaded: it is not valid; the running configuration stays", "hash", res.Hash, "error", res.Err)
	case res.Outcome == OutcomeFailed:
		w.log.Error("configuration partly reloaded: a part refused its settings, which keep their running values",
			"hash", res.Hash, "applied", res.Applied, "failed", res.Failed, "error", res.Err)
	case len(res.Applied) > 0:
		w.log.Info("configuration reloaded", "hash", res.Hash, "applied", res.Applied)
	case len(res.Restart) == 0:
		level := slog.LevelDebug
		if why == triggerSignal {
			level = slog.LevelInfo
		}
		w.log.Log(ctx, level, "configuration reloaded: nothing changed", "hash", res.Hash)
	}
	if len(res.Restart) > 0 {
		args := []any{"settings", res.Restart, "hash", res.Hash}
		if len(res.reasons) > 0 {
			args = append(args, "reasons", res.reasons)
		}
		w.log.Warn("configuration change needs a restart; until then these settings keep their running values", args...)
	}
	return res
}

// maxReads bounds the reads of a configuration whose files keep changing
// while they are read; the last read stands.
const maxReads = 10

// errEmpty refuses a configuration file or secret file that became empty:
// most likely a write caught half way (truncated, not yet written), which
// would drop every setting the file made, or the API token.
var errEmpty = errors.New("the file is empty; not reloaded (restart to take an empty file)")

// emptyFile returns the first of files that exists and is empty.
func emptyFile(files []string) (string, bool) {
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() && st.Size() == 0 {
			return f, true
		}
	}
	return "", false
}

// apply loads the configuration and hands each part its changes. It
// reports false, having changed nothing, when a watched file changed while
// it was read, unless last is set. Called with w.mu held.
func (w *Watcher) apply(ctx context.Context, last bool) (Result, bool) {
	fp := fingerprint(w.files)
	var cfg config.Config
	var err error
	if f, ok := emptyFile(w.files); ok {
		err = fmt.Errorf("%s: %w", f, errEmpty)
	} else if cfg, err = w.opts.Load(); err == nil {
		if f, ok := emptyFile(cfg.SecretFiles()); ok {
			err = fmt.Errorf("%s: %w", f, errEmpty)
		}
	}
	if !last && fingerprint(w.files) != fp {
		return Result{}, false
	}
	// The files as read; a later change is seen as a change.
	w.print = fp
	if err != nil {
		return Result{Outcome: OutcomeInvalid, Hash: w.hash, Err: err}, true
	}
	if files := watchedFiles(w.opts.Path, cfg); !slices.Equal(files, w.files) {
		w.files = files
		w.print = fingerprint(files)
	}
	next := cfg.Settings()
	changed := config.Changed(w.live, next)
	res := Result{Outcome: OutcomeUnchanged}
	owned := map[string]bool{}
	var errs []error
	for _, p := range w.parts {
		var keys []string
		for _, k := range changed {
			if p.owns(k) {
				keys = append(keys, k)
				owned[k] = true
			}
		}
		if len(keys) == 0 {
			continue
		}
		err := p.Apply(ctx, cfg)
		switch {
		case errors.Is(err, ErrRestart):
			res.Restart = append(res.Restart, keys...)
			res.reasons = append(res.reasons, p.Name+": "+err.Error())
			continue
		case err != nil:
			res.Failed = append(res.Failed, keys...)
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
			continue
		}
		for _, k := range keys {
			if v, ok := next[k]; ok {
				w.live[k] = v
			} else {
				delete(w.live, k)
			}
		}
		res.Applied = append(res.Applied, keys...)
	}
	for _, k := range changed {
		if !owned[k] {
			res.Restart = append(res.Restart, k)
		}
	}
	slices.Sort(res.Restart)
	if len(res.Applied) > 0 {
		res.Outcome = OutcomeApplied
	}
	if len(errs) > 0 {
		res.Outcome, res.Err = OutcomeFailed, errors.Join(errs...)
	}
	if h := config.HashSettings(w.live); h != w.hash {
		w.m.setLive(w.hash, h)
		w.hash = h
	}
	res.Hash = w.hash
	return res, true
}

// Live returns a copy of the live settings, as config.Config.Settings
// names them.
func (w *Watcher) Live() map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.live)
}

type metrics struct {
	info    *prometheus.GaugeVec
	reloads *prometheus.CounterVec
	lastAt  prometheus.Gauge
	lastOK  prometheus.Gauge
	restart prometheus.Gauge
}

func newMetrics(tel telemetry.Bundle) (*metrics, error) {
	m := &metrics{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paysidecar_config_info",
			Help: "1 for the hash of the configuration the sidecar runs with (secrets enter the hash only hashed).",
		}, []string{"hash"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_config_reloads_total",
			Help: "Configuration reloads by result: applied, unchanged (nothing that changes live), invalid (not loaded, nothing changed), failed (a part refused its settings).",
		}, []string{"result"}),
		lastAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paysidecar_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded and found valid, at start or at a reload (Unix time).",
		}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paysidecar_config_last_reload_successful",
			Help: "1 when the last configuration reload found a valid configuration, 0 when it did not.",
		}),
		restart: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paysidecar_config_restart_required",
			Help: "1 when the configuration changed in settings that take effect only at a restart.",
		}),
	}
	for _, r := range []string{OutcomeApplied, OutcomeUnchanged, OutcomeInvalid, OutcomeFailed} {
		m.reloads.WithLabelValues(r)
	}
	// The configuration the sidecar started with was loaded and valid.
	m.lastOK.Set(1)
	m.lastAt.Set(float64(tel.Now().UnixNano()) / 1e9)
	if err := tel.Register(m.info, m.reloads, m.lastAt, m.lastOK, m.restart); err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	return m, nil
}

// setLive moves paysidecar_config_info from the hash old to the hash new.
func (m *metrics) setLive(old, new string) {
	if old != "" {
		m.info.DeleteLabelValues(old)
	}
	m.info.WithLabelValues(new).Set(1)
}
