package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/events"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// cleanEnv clears the variables that would otherwise reach config.Load.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, config.EnvPrefix) {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// pluginsDir builds the mock flow plugin into a directory of its own and
// points plugins.dir at it.
func pluginsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "mock"), "github.com/paysidecar/paysidecar/sdk/plugin/mockflow/cmd/mockflow")
	// Plugins are built static, as the Makefile builds them.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the mock flow: %v\n%s", err, out)
	}
	t.Setenv("PAYSIDECAR_PLUGINS__DIR", dir)
	return dir
}

func TestConfigCheck(t *testing.T) {
	cleanEnv(t)
	pluginsDir(t)

	out, _, err := run(t, "config", "check")
	if err != nil || !strings.Contains(out, "configuration is valid") {
		t.Fatalf("defaults: %v %q", err, out)
	}
	// It names the hash a sidecar running the configuration exports.
	if cfg, err := config.Load("", nil); err != nil || !strings.Contains(out, "(hash "+cfg.Hash()+")") {
		t.Errorf("config check says %q, want the hash %s (%v)", out, cfg.Hash(), err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("profile: x\nstore:\n  driver: mysql\napi:\n  max_amount_fen: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "config", "check", "--config", bad)
	if exitCode(err) != 2 {
		t.Fatalf("bad file: want exit status 2, got %v", err)
	}
	msg := describe(err)
	for _, want := range []string{bad + ":1: profile:", bad + ":3: store.driver:", bad + ":5: api.max_amount_fen:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("report lacks %q:\n%s", want, msg)
		}
	}
}

// fakePlugin writes an executable that records that it was started, in
// place of a flow plugin.
func fakePlugin(t *testing.T, dir, marker string) {
	t.Helper()
	script := "#!/bin/sh\necho started >> '" + marker + "'\nexit 1\n"
	for _, name := range []string{"flow-one", "flow-two"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunValidatesLikeConfigCheck gives run and config check the same bad
// configurations: both refuse each with the same problems, and run starts
// no plugin process and opens no store.
func TestRunValidatesLikeConfigCheck(t *testing.T) {
	cleanEnv(t)
	tests := []struct {
		name, yaml, key string
		env             map[string]string
	}{
		{name: "short webhook secret", key: "webhook.secret",
			yaml: "webhook:\n  url: http://127.0.0.1:3000/hook\n  secret: 7-bytes\n"},
		{name: "webhook secret not base64", key: "webhook.secret",
			yaml: "webhook:\n  url: http://127.0.0.1:3000/hook\n  secret: whsec_%%%\n"},
		{name: "webhook secret without a URL", key: "webhook.secret",
			yaml: "webhook:\n  secret: short\n"},
		{name: "API on every interface without a token", key: "api.token",
			yaml: "api:\n  listen: 0.0.0.0:8080\n"},
		{name: "API on an empty host without a token", key: "api.token",
			yaml: "api:\n  listen: :8080\n"},
		{name: "bad duration", key: "webhook.timeout",
			yaml: "webhook:\n  timeout: soon\n"},
		{name: "unknown setting", key: "notify.listne",
			yaml: "notify:\n  listne: 127.0.0.1:8001\n"},
		{name: "mistyped variable", key: "notify_listen",
			env: map[string]string{"PAYSIDECAR_NOTIFY_LISTEN": "127.0.0.1:8001"}},
		{name: "notify URL outside the upstream's ports", key: "notify.public_url",
			yaml: "notify:\n  public_url: http://127.0.0.1:7000/notify\n"},
		{name: "store driver", key: "store.driver",
			yaml: "store:\n  driver: mysql\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			marker := filepath.Join(dir, "started")
			fakePlugin(t, dir, marker)
			db := filepath.Join(dir, "state", "paysidecar.db")
			t.Setenv("PAYSIDECAR_PLUGINS__DIR", dir)
			t.Setenv("PAYSIDECAR_STORE__SQLITE_PATH", db)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			file := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(file, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, checkErr := run(t, "config", "check", "-c", file)
			_, _, runErr := run(t, "run", "-c", file, "--sandbox")
			var ce *config.Error
			if !errors.As(checkErr, &ce) || exitCode(checkErr) != 2 {
				t.Fatalf("config check: want a configuration error, got %v", checkErr)
			}
			if !strings.Contains(describe(checkErr), tt.key+":") && !strings.Contains(describe(checkErr), tt.key+" (from") {
				t.Errorf("config check does not name %s:\n%s", tt.key, describe(checkErr))
			}
			if runErr == nil || describe(runErr) != describe(checkErr) {
				t.Errorf("run and config check disagree:\nrun:   %v\ncheck: %v", runErr, checkErr)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("run started a plugin process with a configuration that does not validate")
			}
			if _, err := os.Stat(filepath.Dir(db)); err == nil {
				t.Error("run opened the store with a configuration that does not validate")
			}
		})
	}
}

// TestRunStartsPluginsWithAValidConfiguration shows that the fake plugins
// of the test above would be noticed: with a valid configuration run gets
// as far as starting them.
func TestRunStartsPluginsWithAValidConfiguration(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	fakePlugin(t, dir, marker)
	t.Setenv("PAYSIDECAR_PLUGINS__DIR", dir)
	t.Setenv("PAYSIDECAR_STORE__SQLITE_PATH", filepath.Join(dir, "paysidecar.db"))
	for _, k := range []string{"API", "NOTIFY", "ADMIN"} {
		t.Setenv("PAYSIDECAR_"+k+"__LISTEN", "127.0.0.1:0")
	}
	t.Setenv("PAYSIDECAR_UPSTREAM__BASE_URL", "http://127.0.0.1:1")
	if _, _, err := run(t, "run"); err == nil {
		t.Fatal("run succeeded with plugins that exit at once")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no plugin was started: %v", err)
	}
}

// TestConfigCheckReportsFlowSettings checks a flow's settings against the
// schema its plugin declares: every bad setting is reported with its key,
// and a secret value is never shown.
func TestConfigCheckReportsFlowSettings(t *testing.T) {
	cleanEnv(t)
	dir := pluginsDir(t)
	path := filepath.Join(t.TempDir(), "flows.yaml")
	body := `
plugins:
  flows:
    mock:
      settings:
        max_fen: lots
        mode: loud
        app_secrt: hunter2-not-shown
    elsewhere:
      path: ` + filepath.Join(dir, "missing") + `
merchants:
  "6666000100000002":
    flows:
      mock:
        settings:
          label: not-per-merchant-value
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, "config", "check", "--config", path)
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("want exit status 2, got %v", err)
	}
	stderr := describe(err)
	for _, want := range []string{
		"plugins.flows.mock.settings.max_fen: must be an integer",
		"plugins.flows.mock.settings.mode: must be one of normal, strict",
		"plugins.flows.mock.settings.app_secrt: unknown setting",
		"plugins.flows.elsewhere: cannot read the plugin's settings",
		"merchants.6666000100000002.flows.mock.settings.label: not a setting a merchant can have of its own",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("report lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "hunter2") || strings.Contains(stderr, "not-per-merchant-value") {
		t.Errorf("the report shows a setting's value:\n%s", stderr)
	}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, "keygen", "--dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "merchant_private_key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", err, st)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "merchant_public_key.txt"))
	if err != nil || !strings.Contains(out, strings.TrimSpace(string(pub))) {
		t.Fatalf("the public key to upload is not printed: %v\n%s", err, out)
	}
	if _, _, err := run(t, "keygen", "--dir", dir); err == nil {
		t.Fatal("keygen overwrote existing keys without --force")
	}
	if _, _, err := run(t, "keygen", "--dir", dir, "--force"); err != nil {
		t.Fatalf("--force: %v", err)
	}
}

func TestEventsReplayArguments(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"events", "replay"}, "name the events to replay"},
		{[]string{"events", "replay", "--all", "evt_1"}, "not both"},
		{[]string{"events", "list", "--status", "gone"}, "want pending, dead, delivered or all"},
	}
	for _, tt := range tests {
		_, _, err := run(t, append(tt.args, "--api", "http://127.0.0.1:1", "--token", "x")...)
		if err == nil || !strings.Contains(describe(err), tt.want) || exitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error saying %q", tt.args, err, tt.want)
		}
	}
}

// eventsAPI serves the real events API over a SQLite store holding one
// pending, one dead and one delivered event, behind the app API's bearer
// token check.
func eventsAPI(t *testing.T, token string) string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now()
	for i, ev := range []struct{ id, typ, obj string }{
		{"evt_pending", "payment.succeeded", "pay_1"},
		{"evt_dead", "refund.succeeded", "ref_2"},
		{"evt_done", "payment.succeeded", "pay_3"},
	} {
		e := &store.Event{ID: ev.id, Type: ev.typ, ObjectID: ev.obj, OrderKey: ev.obj, Payload: json.RawMessage(`{}`), Status: store.EventPending, NextAttemptAt: now, CreatedAt: now}
		if _, err := st.InsertEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue
		}
		claimed, err := st.ClaimEvents(ctx, store.Claim{Owner: "t", LeaseUntil: now.Add(time.Minute)}, now.Add(time.Second), 10)
		if err != nil || len(claimed) == 0 {
			t.Fatalf("claim: %v %v", claimed, err)
		}
		for _, c := range claimed {
			if c.ID != ev.id {
				continue
			}
			a := store.Attempt{EventID: c.ID, Owner: "t", Dead: i == 1, Delivered: i == 2, Error: "HTTP 500", At: now}
			if i == 2 {
				a.Error = ""
			}
			if err := st.CompleteAttempt(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	h, err := events.NewHandler(st, events.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"a valid bearer token is required"}}`))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestEventsReadTheTokenFromTokenFile(t *testing.T) {
	cleanEnv(t)
	base := eventsAPI(t, "s3cret-token")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("api:\n  token_file: "+tokenFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "events", "list", "-c", file, "--api", base)
	if err != nil {
		t.Fatalf("events list with api.token_file: %v", describe(err))
	}
	if !strings.Contains(out, "evt_dead") {
		t.Errorf("list lacks the dead letter:\n%s", out)
	}
	_, _, err = run(t, "events", "list", "--api", base, "--token", "wrong")
	if err == nil || !strings.Contains(describe(err), "HTTP 401") || !strings.Contains(describe(err), "api.token_file") {
		t.Errorf("a wrong token: %v", err)
	}
}

func TestEventsListFilters(t *testing.T) {
	cleanEnv(t)
	base := eventsAPI(t, "tok")
	tests := []struct {
		args      []string
		want, not []string
	}{
		{nil, []string{"evt_pending", "evt_dead", "STATUS"}, []string{"evt_done"}},
		{[]string{"--status", "dead"}, []string{"evt_dead", "HTTP 500"}, []string{"evt_pending", "evt_done"}},
		{[]string{"--status", "all", "--type", "payment.succeeded"}, []string{"evt_pending", "evt_done"}, []string{"evt_dead"}},
		{[]string{"--status", "all", "--object", "ref_2"}, []string{"evt_dead"}, []string{"evt_pending", "evt_done"}},
		{[]string{"--status", "all", "--limit", "1"}, []string{"evt_pending", "raise --limit"}, []string{"evt_dead", "evt_done"}},
		{[]string{"--status", "delivered", "--type", "none"}, []string{"no events"}, []string{"evt_"}},
	}
	for _, tt := range tests {
		out, _, err := run(t, append([]string{"events", "list", "--api", base, "--token", "tok"}, tt.args...)...)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, describe(err))
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, w, out)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(out, n) {
				t.Errorf("%v: output has %q:\n%s", tt.args, n, out)
			}
		}
	}
	out, _, err := run(t, "events", "list", "--api", base, "--token", "tok", "--json")
	var recs []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &recs) != nil || len(recs) != 2 {
		t.Errorf("--json: %v %d records\n%s", err, len(recs), out)
	}
}

func TestDescribeNamesTheProgramOnce(t *testing.T) {
	_, _, err := run(t, "events", "list", "--api", "http://127.0.0.1:1", "--token", "x")
	msg := describe(err)
	if strings.Contains(msg, "paysidecar:") || !strings.Contains(msg, "cannot reach the sidecar's app API at http://127.0.0.1:1") {
		t.Errorf("describe = %q", msg)
	}
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("not one line: %q", msg)
	}
}

func TestDelayStop(t *testing.T) {
	parent, stopParent := context.WithCancel(context.Background())
	var log bytes.Buffer
	ctx, stop := delayStop(parent, 200*time.Millisecond, &log)
	defer stop()
	stopParent()
	stopped := time.Now()
	<-ctx.Done()
	if waited := time.Since(stopped); waited < 200*time.Millisecond {
		t.Errorf("ended %s after the stop, want at least the 200ms delay", waited)
	}
	if !strings.Contains(log.String(), "--shutdown-delay") {
		t.Errorf("no log line: %q", log.String())
	}

	parent, stopParent = context.WithCancel(context.Background())
	ctx, stop = delayStop(parent, 0, &log)
	defer stop()
	stopParent()
	<-ctx.Done()
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSandboxKeepsItsStateBesideTheStore runs `paysidecar sandbox` and
// finds its state file next to the SQLite store once it stops.
func TestSandboxKeepsItsStateBesideTheStore(t *testing.T) {
	cleanEnv(t)
	dir := filepath.Join(t.TempDir(), ".paysidecar")
	t.Setenv("PAYSIDECAR_STORE__SQLITE_PATH", filepath.Join(dir, "paysidecar.db"))
	t.Setenv("PAYSIDECAR_SANDBOX__LISTEN", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newRootCommand()
	var out syncBuffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{"sandbox"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "sandbox upstream on") {
		if time.Now().After(deadline) {
			t.Fatal("the sandbox did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "sandbox.json"))
	if err != nil || !strings.Contains(string(b), `"version": 1`) {
		t.Fatalf("no state beside the store: %v\n%s", err, b)
	}
}
