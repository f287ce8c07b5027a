package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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

// pluginsDir builds the mock flow plugin into a directory of its own and
// points plugins.dir at it.
func pluginsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "mock"), "github.com/paysidecar/paysidecar/sdk/plugin/mockflow/cmd/mockflow")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the mock flow: %v\n%s", err, out)
	}
	t.Setenv("PAYSIDECAR_PLUGINS__DIR", dir)
	return dir
}

func TestConfigCheck(t *testing.T) {
	t.Setenv("PAYSIDECAR_CONFIG", "")
	pluginsDir(t)
	out, _, err := run(t, "config", "check")
	if err != nil || !strings.Contains(out, "configuration is valid") {
		t.Fatalf("defaults: %v %q", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("profile: x\nstore:\n  driver: mysql\napi:\n  max_amount_fen: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run(t, "config", "check", "--config", bad)
	var ex exitError
	if !errors.As(err, &ex) || ex.code != 2 {
		t.Fatalf("bad file: want exit status 2, got %v", err)
	}
	for _, key := range []string{"profile:", "store.driver:", "api.max_amount_fen:"} {
		if !strings.Contains(stderr, key) {
			t.Errorf("report lacks %s:\n%s", key, stderr)
		}
	}
}

// TestConfigCheckReportsFlowSettings checks a flow's settings against the
// schema its plugin declares: every bad setting is reported with its key,
// and a secret value is never shown.
func TestConfigCheckReportsFlowSettings(t *testing.T) {
	t.Setenv("PAYSIDECAR_CONFIG", "")
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
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run(t, "config", "check", "--config", path)
	var ex exitError
	if !errors.As(err, &ex) || ex.code != 2 {
		t.Fatalf("want exit status 2, got %v\n%s", err, stderr)
	}
	for _, want := range []string{
		"plugins.flows.mock.settings.max_fen: must be an integer",
		"plugins.flows.mock.settings.mode: must be one of normal, strict",
		"plugins.flows.mock.settings.app_secrt: unknown setting",
		"plugins.flows.elsewhere: cannot read the plugin's settings",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("report lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "hunter2") {
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

func TestEventsReplayNeedsIDsOrAll(t *testing.T) {
	for _, args := range [][]string{{"events", "replay"}, {"events", "replay", "--all", "evt_1"}} {
		if _, _, err := run(t, append(args, "--api", "http://127.0.0.1:1")...); err == nil || !strings.Contains(err.Error(), "not both") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
