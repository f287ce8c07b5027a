package reload_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/reload"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// logBuffer collects the watcher's log records as text.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// recorder is a part that records what it was given.
type recorder struct {
	mu    sync.Mutex
	got   []config.Config
	fail  error
	calls int
}

func (r *recorder) apply(_ context.Context, cfg config.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		return r.fail
	}
	r.got = append(r.got, cfg)
	return nil
}

func (r *recorder) last() (config.Config, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		return config.Config{}, r.calls
	}
	return r.got[len(r.got)-1], r.calls
}

func (r *recorder) setFail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

// fixture is a configuration file, a watcher of it and two parts: the API
// (api.token) and delivery (webhook.url, webhook.secret, webhook.secret_file).
type fixture struct {
	t        *testing.T
	dir      string
	path     string
	envMu    sync.Mutex
	env      []string
	w        *reload.Watcher
	level    *recorder
	api      *recorder
	delivery *recorder
	reg      *prometheus.Registry
	logs     *logBuffer
	signals  chan os.Signal
}

const baseYAML = `log:
  level: info
api:
  token: first-token
webhook:
  url: http://127.0.0.1:9/hook
  secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
`

func newFixture(t *testing.T, path string, env ...string) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: filepath.Dir(path), path: path, env: env, api: &recorder{}, delivery: &recorder{}, level: &recorder{},
		reg: prometheus.NewRegistry(), logs: &logBuffer{}, signals: make(chan os.Signal, 1)}
	load := func() (config.Config, error) {
		f.envMu.Lock()
		env := slices.Clone(f.env)
		f.envMu.Unlock()
		return config.Load(f.path, func() []string { return env })
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	f.w, err = reload.New(cfg, []reload.Part{
		{Name: "log", Keys: []string{"log.level"}, Apply: f.level.apply},
		{Name: "api", Keys: []string{"api.token", "api.token_file"}, Apply: f.api.apply},
		{Name: "delivery", Keys: []string{"webhook.url", "webhook.secret", "webhook.secret_file"}, Apply: f.delivery.apply},
	}, reload.Options{
		Path: f.path, Load: load, Signals: f.signals, Quiet: 10 * time.Millisecond,
		Telemetry: telemetry.Bundle{Logger: telemetry.NewLogger(f.logs, "debug", "text"), Registerer: f.reg},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) setEnv(env ...string) {
	f.envMu.Lock()
	defer f.envMu.Unlock()
	f.env = env
}

// start runs the watcher until the test ends.
func (f *fixture) start() {
	f.t.Helper()
	if err := f.w.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = f.w.Close() })
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) gauge(name string, labels ...string) float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var got []string
			for _, lp := range m.GetLabel() {
				got = append(got, lp.GetValue())
			}
			if slices.Equal(got, labels) {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// infoHashes returns the hashes paysidecar_config_info has series for.
func (f *fixture) infoHashes() []string {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() == "paysidecar_config_info" {
			for _, m := range mf.GetMetric() {
				out = append(out, m.GetLabel()[0].GetValue())
			}
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func hashOf(t *testing.T, path string, env ...string) string {
	t.Helper()
	cfg, err := config.Load(path, func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Hash()
}

func TestValidChangeApplies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, baseYAML)
	f := newFixture(t, path)
	first := f.w.Hash()
	if first != hashOf(t, path) || !slices.Equal(f.infoHashes(), []string{first}) {
		t.Fatalf("live hash %s, info series %v; want the file's hash %s", first, f.infoHashes(), hashOf(t, path))
	}

	writeFile(t, path, strings.Replace(baseYAML, "first-token", "second-token", 1))
	res := f.w.Reload(context.Background())
	if res.Outcome != reload.OutcomeApplied || !slices.Equal(res.Applied, []string{"api.token"}) || len(res.Restart) != 0 {
		t.Fatalf("result %+v, want api.token applied", res)
	}
	got, calls := f.api.last()
	if calls != 1 || got.API.Token != "second-token" {
		t.Errorf("the API part was called %d times with token %q", calls, got.API.Token)
	}
	if _, calls := f.delivery.last(); calls != 0 {
		t.Errorf("delivery, whose settings did not change, was called %d times", calls)
	}
	if res.Hash == first || res.Hash != hashOf(t, path) || !slices.Equal(f.infoHashes(), []string{res.Hash}) {
		t.Errorf("hash %s (was %s), info series %v; want the new file's hash %s alone", res.Hash, first, f.infoHashes(), hashOf(t, path))
	}
	if f.gauge("paysidecar_config_reloads_total", "applied") != 1 || f.gauge("paysidecar_config_restart_required") != 0 {
		t.Errorf("reloads{applied} = %v, restart_required = %v", f.gauge("paysidecar_config_reloads_total", "applied"),
			f.gauge("paysidecar_config_restart_required"))
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "configuration reloaded") || !strings.Contains(logs, "hash="+res.Hash) {
		t.Errorf("no log line names the new configuration:\n%s", logs)
	}
	if strings.Contains(logs, "second-token") || strings.Contains(logs, "first-token") {
		t.Errorf("a token is in the logs:\n%s", logs)
	}

	// The same file again changes nothing and keeps the hash.
	res = f.w.Reload(context.Background())
	if res.Outcome != reload.OutcomeUnchanged || res.Hash != hashOf(t, path) {
		t.Errorf("reloading the same file: %+v", res)
	}
	if _, calls := f.api.last(); calls != 1 {
		t.Errorf("the API part was called again for no change")
	}
}

func TestInvalidChangesNothing(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not YAML", baseYAML + "webhook: [\n", "config.yaml:"},
		{"short secret", strings.Replace(strings.Replace(baseYAML, "first-token", "second-token", 1),
			"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "short", 1), "config.yaml:7: webhook.secret"},
		{"bad level", strings.Replace(baseYAML, "level: info", "level: loud", 1), "config.yaml:2: log.level"},
		{"unknown key", baseYAML + "webhok:\n  url: x\n", "webhok: unknown setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			writeFile(t, path, baseYAML)
			f := newFixture(t, path)
			first := f.w.Hash()
			live := f.w.Live()
			writeFile(t, path, tt.content)
			res := f.w.Reload(context.Background())
			var ce *config.Error
			if res.Outcome != reload.OutcomeInvalid || res.Err == nil {
				t.Fatalf("result %+v, want invalid", res)
			}
			if tt.name != "not YAML" && !errors.As(res.Err, &ce) {
				t.Errorf("error %v is not a *config.Error", res.Err)
			}
			if !strings.Contains(res.Err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", res.Err, tt.want)
			}
			if _, calls := f.api.last(); calls != 0 {
				t.Error("a part was called for an invalid file")
			}
			if _, calls := f.delivery.last(); calls != 0 {
				t.Error("a part was called for an invalid file")
			}
			if res.Hash != first || f.w.Hash() != first || !slices.Equal(f.infoHashes(), []string{first}) {
				t.Errorf("the live hash moved from %s to %s (info %v)", first, f.w.Hash(), f.infoHashes())
			}
			if !equalSettings(live, f.w.Live()) {
				t.Error("the live settings changed")
			}
			if f.gauge("paysidecar_config_last_reload_successful") != 0 || f.gauge("paysidecar_config_reloads_total", "invalid") != 1 {
				t.Error("the metrics do not report the invalid reload")
			}
			if logs := f.logs.String(); !strings.Contains(logs, "not valid") || !strings.Contains(logs, tt.want) {
				t.Errorf("the log does not report the problem with its line:\n%s", logs)
			}

			// Fixed, it applies.
			writeFile(t, path, strings.Replace(baseYAML, "first-token", "third-token", 1))
			if res := f.w.Reload(context.Background()); res.Outcome != reload.OutcomeApplied {
				t.Errorf("the fixed file: %+v", res)
			}
			if f.gauge("paysidecar_config_last_reload_successful") != 1 {
				t.Error("last_reload_successful stays 0 after a good reload")
			}
		})
	}
}

func equalSettings(a, b map[string]any) bool { return len(config.Changed(a, b)) == 0 }

// A change to a setting no part takes live is reported as needing a
// restart; the rest of the change applies, and the live hash is that of
// the configuration the parts run with.
func TestRestartNeeded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, baseYAML)
	f := newFixture(t, path)
	first := f.w.Hash()

	changed := strings.Replace(baseYAML, "first-token", "second-token", 1) + "admin:\n  listen: 127.0.0.1:19090\nstore:\n  driver: postgres\n  postgres_dsn: postgres://x\n"
	writeFile(t, path, changed)
	res := f.w.Reload(context.Background())
	want := []string{"admin.listen", "store.driver", "store.postgres_dsn"}
	if res.Outcome != reload.OutcomeApplied || !slices.Equal(res.Applied, []string{"api.token"}) || !slices.Equal(res.Restart, want) {
		t.Fatalf("result %+v, want api.token applied and %v waiting", res, want)
	}
	if got, _ := f.api.last(); got.API.Token != "second-token" {
		t.Error("the token did not apply")
	}
	// Live: the new token with the old admin and store settings.
	live := strings.Replace(baseYAML, "first-token", "second-token", 1)
	livePath := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, livePath, live)
	if res.Hash != hashOf(t, livePath) || res.Hash == first || res.Hash == hashOf(t, path) {
		t.Errorf("hash %s; want the one of the running mix %s, not the file's %s", res.Hash, hashOf(t, livePath), hashOf(t, path))
	}
	if f.gauge("paysidecar_config_restart_required") != 1 {
		t.Error("restart_required is not 1")
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "needs a restart") || !strings.Contains(logs, "store.driver") || strings.Contains(logs, "postgres://x") {
		t.Errorf("the log does not say which settings need a restart (or shows a value):\n%s", logs)
	}

	// Still pending at the next reload; gone once the file is back.
	if res := f.w.Reload(context.Background()); !slices.Equal(res.Restart, want) || res.Outcome != reload.OutcomeUnchanged {
		t.Errorf("the next reload: %+v", res)
	}
	writeFile(t, path, live)
	if res := f.w.Reload(context.Background()); len(res.Restart) != 0 || res.Hash != hashOf(t, livePath) {
		t.Errorf("the file back to the running settings: %+v", res)
	}
	if f.gauge("paysidecar_config_restart_required") != 0 {
		t.Error("restart_required stays 1")
	}
}

// A part that needs a restart for its change, or that fails, keeps its
// settings; the other parts apply theirs.
func TestPartRefuses(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error
		outcome string
	}{
		{"restart", fmt.Errorf("turning delivery off: %w", reload.ErrRestart), reload.OutcomeApplied},
		{"failure", errors.New("the plugin refused"), reload.OutcomeFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			writeFile(t, path, baseYAML)
			f := newFixture(t, path)
			f.delivery.setFail(tt.err)
			writeFile(t, path, strings.Replace(strings.Replace(baseYAML, "first-token", "second-token", 1), "127.0.0.1:9", "127.0.0.1:10", 1))
			res := f.w.Reload(context.Background())
			if res.Outcome != tt.outcome || !slices.Equal(res.Applied, []string{"api.token"}) {
				t.Fatalf("result %+v", res)
			}
			if tt.err == reload.ErrRestart || errors.Is(tt.err, reload.ErrRestart) {
				if !slices.Equal(res.Restart, []string{"webhook.url"}) || !strings.Contains(f.logs.String(), "turning delivery off") {
					t.Errorf("restart %v; logs:\n%s", res.Restart, f.logs.String())
				}
			} else if !slices.Equal(res.Failed, []string{"webhook.url"}) || !strings.Contains(f.logs.String(), "the plugin refused") {
				t.Errorf("failed %v; logs:\n%s", res.Failed, f.logs.String())
			}
			// The live hash has the new token and the old URL.
			if v := f.w.Live()["webhook.url"]; v != "http://127.0.0.1:9/hook" {
				t.Errorf("live webhook.url = %v", v)
			}
			if v := f.w.Live()["api.token"]; v != "second-token" {
				t.Error("the token did not apply")
			}
			// Once the part accepts, the same file applies.
			f.delivery.setFail(nil)
			if res := f.w.Reload(context.Background()); !slices.Equal(res.Applied, []string{"webhook.url"}) {
				t.Errorf("the part accepting: %+v", res)
			}
		})
	}
}

// The watcher picks up every way a file is replaced, and the signal.
func TestWatch(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the configuration path the sidecar is given and
		// a function that changes the token to tok.
		setup func(t *testing.T, dir string) (string, func(tok string))
	}{
		{"written in place", func(t *testing.T, dir string) (string, func(string)) {
			path := filepath.Join(dir, "config.yaml")
			writeFile(t, path, baseYAML)
			return path, func(tok string) { writeFile(t, path, strings.Replace(baseYAML, "first-token", tok, 1)) }
		}},
		{"renamed over", func(t *testing.T, dir string) (string, func(string)) {
			path := filepath.Join(dir, "config.yaml")
			writeFile(t, path, baseYAML)
			return path, func(tok string) {
				tmp := filepath.Join(dir, ".config.yaml.swp")
				writeFile(t, tmp, strings.Replace(baseYAML, "first-token", tok, 1))
				if err := os.Rename(tmp, path); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"removed and written again", func(t *testing.T, dir string) (string, func(string)) {
			path := filepath.Join(dir, "config.yaml")
			writeFile(t, path, baseYAML)
			return path, func(tok string) {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				writeFile(t, path, strings.Replace(baseYAML, "first-token", tok, 1))
			}
		}},
		{"ConfigMap symlink swap", func(t *testing.T, dir string) (string, func(string)) {
			// What the kubelet does: the files live in a timestamped
			// directory, ..data points at it, and the file is a link
			// through ..data; an update swaps ..data by rename.
			n := 0
			version := func(content string) string {
				n++
				v := fmt.Sprintf("..2026_12_01_10_00_0%d.%d", n, n)
				if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, v, "config.yaml"), content)
				return v
			}
			if err := os.Symlink(version(baseYAML), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join("..data", "config.yaml"), filepath.Join(dir, "config.yaml")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "config.yaml"), func(tok string) {
				old, _ := os.Readlink(filepath.Join(dir, "..data"))
				v := version(strings.Replace(baseYAML, "first-token", tok, 1))
				if err := os.Symlink(v, filepath.Join(dir, "..data_tmp")); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
					t.Fatal(err)
				}
				if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, change := tt.setup(t, t.TempDir())
			f := newFixture(t, path)
			f.start()
			for _, tok := range []string{"second-token", "third-token"} {
				change(tok)
				waitFor(t, "the token "+tok+" applied", func() bool {
					got, _ := f.api.last()
					return got.API.Token == tok
				})
				if f.w.Hash() != hashOf(t, path) {
					t.Errorf("live hash %s, want the file's %s", f.w.Hash(), hashOf(t, path))
				}
			}
			// Each change was applied once: the file's content decides,
			// not the number of directory events.
			if _, calls := f.api.last(); calls != 2 {
				t.Errorf("the API part was called %d times for two changes", calls)
			}
			if n := f.gauge("paysidecar_config_reloads_total", "applied"); n != 2 {
				t.Errorf("reloads{applied} = %v, want 2", n)
			}
		})
	}
}

// An edit that changes no setting (a comment) reloads, applies nothing and
// keeps the hash.
func TestEditWithoutChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, baseYAML)
	f := newFixture(t, path)
	first := f.w.Hash()
	f.start()
	writeFile(t, path, "# a comment\n"+baseYAML)
	waitFor(t, "the reload of the comment", func() bool {
		return f.gauge("paysidecar_config_reloads_total", "unchanged") == 1
	})
	if f.w.Hash() != first || !slices.Equal(f.infoHashes(), []string{first}) {
		t.Errorf("hash %s (info %v), want %s", f.w.Hash(), f.infoHashes(), first)
	}
	if _, calls := f.api.last(); calls != 0 {
		t.Errorf("a part was called %d times", calls)
	}
}

// A change made while the sidecar started, before the watch began, is
// applied when it begins; with no such change the start reloads nothing.
func TestChangeBeforeStart(t *testing.T) {
	for _, change := range []bool{false, true} {
		t.Run(fmt.Sprint("changed=", change), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			writeFile(t, path, baseYAML)
			f := newFixture(t, path)
			if change {
				writeFile(t, path, strings.Replace(baseYAML, "first-token", "second-token", 1))
			}
			f.start()
			if change {
				waitFor(t, "the change applied", func() bool { return f.w.Live()["api.token"] == "second-token" })
			}
			// Another reload orders after the start's.
			f.w.Reload(context.Background())
			if got := f.gauge("paysidecar_config_reloads_total", "applied"); got != map[bool]float64{false: 0, true: 1}[change] {
				t.Errorf("reloads{applied} = %v", got)
			}
			if got := f.gauge("paysidecar_config_reloads_total", "unchanged"); got != 1 {
				t.Errorf("reloads{unchanged} = %v, want only the one asked for", got)
			}
		})
	}
}

// tokenFileFixture is a fixture whose token is read from a file in a
// directory of its own (a mounted Secret).
func tokenFileFixture(t *testing.T) (f *fixture, path, tokenFile string) {
	tokenFile = filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, "first-from-file\n")
	path = filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, strings.Replace(baseYAML, "token: first-token", "token_file: "+tokenFile, 1))
	return newFixture(t, path), path, tokenFile
}

// A secret file in another directory (a mounted Secret) is watched too,
// and re-read at each reload.
func TestSecretFileChange(t *testing.T) {
	f, _, tokenFile := tokenFileFixture(t)
	secrets := filepath.Dir(tokenFile)
	f.start()
	writeFile(t, tokenFile, "second-from-file\n")
	waitFor(t, "the token file's new content applied", func() bool {
		got, _ := f.api.last()
		return got.API.Token == "second-from-file"
	})
	// A noise event beside it (an editor's swap file) reloads nothing.
	writeFile(t, filepath.Join(secrets, ".token.swp"), "x")
	writeFile(t, tokenFile, "third-from-file\n")
	waitFor(t, "the third token applied", func() bool {
		got, _ := f.api.last()
		return got.API.Token == "third-from-file"
	})
	if _, calls := f.api.last(); calls != 2 {
		t.Errorf("the API part was called %d times for two changes", calls)
	}
	if strings.Contains(f.logs.String(), "from-file") {
		t.Errorf("a token is in the logs:\n%s", f.logs.String())
	}
}

// A file that became empty, most likely caught half written, is refused:
// the token stays.
func TestEmptyFileRefused(t *testing.T) {
	f, path, tokenFile := tokenFileFixture(t)
	for _, empty := range []string{tokenFile, path} {
		content, err := os.ReadFile(empty)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, empty, "")
		res := f.w.Reload(context.Background())
		if res.Outcome != reload.OutcomeInvalid || !strings.Contains(fmt.Sprint(res.Err), empty+": the file is empty") {
			t.Errorf("%s emptied: %+v", empty, res)
		}
		if v := f.w.Live()["api.token"]; v != "first-from-file" {
			t.Errorf("%s emptied: live token %v", empty, v)
		}
		writeFile(t, empty, string(content))
	}
	if _, calls := f.api.last(); calls != 0 {
		t.Errorf("the API part was called %d times", calls)
	}
}

// A file linked from the configuration's directory changes where it is.
func TestLinkedFile(t *testing.T) {
	elsewhere := filepath.Join(t.TempDir(), "real.yaml")
	writeFile(t, elsewhere, baseYAML)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.Symlink(elsewhere, path); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, path)
	f.start()
	writeFile(t, elsewhere, strings.Replace(baseYAML, "first-token", "second-token", 1))
	waitFor(t, "the linked file's change applied", func() bool {
		got, _ := f.api.last()
		return got.API.Token == "second-token"
	})
}

// A signal reloads even when no file event came: a secret from the
// environment's file path, or a file on a file system that sends no
// events.
func TestSignal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, baseYAML)
	f := newFixture(t, path)
	f.start()
	// Change what the environment says, which no file event reports.
	f.setEnv("PAYSIDECAR_LOG__LEVEL=debug")
	f.signals <- syscall.SIGHUP
	waitFor(t, "the signal's reload", func() bool { return f.gauge("paysidecar_config_reloads_total", "applied") == 1 })
	if v := f.w.Live()["log.level"]; v != "debug" {
		t.Errorf("log.level = %v after the signal", v)
	}
	f.signals <- syscall.SIGHUP
	waitFor(t, "the second signal's reload", func() bool {
		return f.gauge("paysidecar_config_reloads_total", "unchanged") == 1
	})
	if !strings.Contains(f.logs.String(), "signal=hangup") {
		t.Errorf("the log does not name the signal:\n%s", f.logs.String())
	}
}
