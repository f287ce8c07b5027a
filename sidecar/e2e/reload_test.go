package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
)

const otherWebhookSecret = "whsec_cGF5c2lkZWNhci1lMmUtc2Vjb25kLXNlY3JldA=="

// configMap is a directory laid out as the kubelet lays out a mounted
// ConfigMap: config.yaml links through ..data to a timestamped directory,
// and an update swaps ..data by renaming a new link over it.
type configMap struct {
	t   *testing.T
	dir string
	n   int
}

func newConfigMap(t *testing.T, content string) *configMap {
	c := &configMap{t: t, dir: t.TempDir()}
	if err := os.Symlink(c.version(content), filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), c.path()); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *configMap) path() string { return filepath.Join(c.dir, "config.yaml") }

func (c *configMap) version(content string) string {
	c.n++
	v := fmt.Sprintf("..2026_12_01_10_00_%02d.%d", c.n, c.n)
	if err := os.Mkdir(filepath.Join(c.dir, v), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, v, "config.yaml"), []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return v
}

// update swaps in content as the kubelet does.
func (c *configMap) update(content string) {
	old, err := os.Readlink(filepath.Join(c.dir, "..data"))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.Symlink(c.version(content), filepath.Join(c.dir, "..data_tmp")); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(c.dir, "..data_tmp"), filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(c.dir, old)); err != nil {
		c.t.Fatal(err)
	}
}

// configHash runs `paysidecar config check` with env and returns the hash
// it prints: the one a sidecar running that configuration exports.
func configHash(t *testing.T, env []string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "paysidecar"), "config", "check")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`\(hash ([0-9a-f]+)\)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("config check printed no hash: %s", out)
	}
	return string(m[1])
}

func reloadYAML(token string, hook *webhookSink, secret string, extra string) string {
	return fmt.Sprintf(`api:
  token: %s
webhook:
  url: %s/hook
  secret: %s
  schedule: [100ms, 200ms, 400ms, 800ms]
  timeout: 2s
%s`, token, hook.srv.URL, secret, extra)
}

// The configuration changes under load, through a ConfigMap update: the
// API token and the webhook's URL and secret change with no restart, no
// request fails for another reason than its token, and no event is lost
// or signed with the wrong secret. Then a file that is not valid changes
// nothing and is reported with its line, and a change that needs a
// restart is reported as such.
func TestConfigurationReloadsLive(t *testing.T) {
	sb := sandboxtest.Start(t)
	first, second := newWebhookSink(t), newWebhookSinkWithSecret(t, otherWebhookSecret)
	cm := newConfigMap(t, reloadYAML("token-one", first, testWebhookSecret, ""))
	env, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), "PAYSIDECAR_CONFIG="+cm.path())
	sc := startSidecar(t, env, api, notify, admin)
	ctx := ctxTimeout(t, 120*time.Second)
	startHash := configHash(t, env)
	if got := sc.metric("paysidecar_config_info", `hash="`+startHash+`"`); got != 1 {
		t.Fatalf("paysidecar_config_info{hash=%q} = %v, want 1", startHash, got)
	}
	clients := map[string]*client.Client{}
	for _, tok := range []string{"token-one", "token-two"} {
		clients[tok] = client.New(sc.API, client.WithToken(tok), client.WithHTTPClient(&http.Client{Timeout: 20 * time.Second}))
	}

	// Readers call the API all along with either token.
	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		reads    atomic.Int64
		reloaded atomic.Bool // set once the reload was seen in the metrics
		lateOne  atomic.Int64
		lateTwo  atomic.Int64
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := []string{"token-one", "token-two"}[(i+w)%2]
				seen := reloaded.Load()
				var out any
				err := clients[tok].Do(ctx, http.MethodGet, "/v1/flows", nil, &out)
				reads.Add(1)
				var ae *client.APIError
				switch {
				case err == nil:
					if seen && tok == "token-one" {
						lateOne.Add(1)
					}
					if seen && tok == "token-two" {
						lateTwo.Add(1)
					}
				case errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized:
					if seen && tok == "token-two" {
						mu.Lock()
						failures = append(failures, "the new token was refused after the reload")
						mu.Unlock()
					}
				default:
					mu.Lock()
					failures = append(failures, fmt.Sprintf("a request with %s failed: %v", tok, err))
					mu.Unlock()
				}
			}
		})
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})

	// pay creates a payment with whichever token is let in and settles it.
	var early, late []string // payment ids before and after the reload was seen
	pay := func(i int) {
		t.Helper()
		req := client.CreatePaymentRequest{Flow: client.FlowAlipayNative, OutTradeNo: fmt.Sprintf("reload-%03d", i), AmountFen: 10, Description: "reload"}
		seen := reloaded.Load()
		for attempt := 0; ; attempt++ {
			tok := []string{"token-one", "token-two"}[attempt%2]
			if seen {
				tok = "token-two"
			}
			p, err := clients[tok].CreatePayment(ctx, req)
			var ae *client.APIError
			if errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized && attempt < 20 {
				if seen {
					t.Fatalf("after the reload, %s was refused", tok)
				}
				continue
			}
			if err != nil {
				t.Fatalf("create %s: %v", req.OutTradeNo, err)
			}
			sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
			if seen {
				late = append(late, p.ID)
			} else {
				early = append(early, p.ID)
			}
			return
		}
	}
	for i := range 10 {
		pay(i)
	}
	waitFor(t, 30*time.Second, "the first events at the first application", func() (bool, string) {
		return len(first.received()) >= 5, fmt.Sprint(len(first.received()))
	})

	cm.update(reloadYAML("token-two", second, otherWebhookSecret, ""))
	newHash := configHash(t, env)
	for i := 10; !reloaded.Load(); i++ {
		pay(i)
		if sc.metric("paysidecar_config_info", `hash="`+newHash+`"`) == 1 {
			reloaded.Store(true)
		}
		if i > 500 {
			t.Fatalf("the reload was not seen after %d payments; logs:\n%s", i, tail(sc.logs.String(), 20))
		}
	}
	for i := 1000; i < 1010; i++ {
		pay(i)
	}
	mark := reads.Load()
	waitFor(t, 30*time.Second, "reads after the reload", func() (bool, string) { return reads.Load() > mark+100, "" })
	close(stop)
	wg.Wait()
	mu.Lock()
	for _, f := range failures {
		t.Error(f)
	}
	mu.Unlock()
	if lateOne.Load() != 0 || lateTwo.Load() == 0 {
		t.Errorf("after the reload: %d reads let in by the old token, %d by the new", lateOne.Load(), lateTwo.Load())
	}

	// Every payment's event reached one application, signed with its
	// secret (the sinks check); those paid after the reload, the new one.
	at := func(s *webhookSink) map[string]bool {
		out := map[string]bool{}
		for _, r := range s.received() {
			if r.Event.Type == client.EventPaymentSucceeded {
				out[r.Event.Data.Payment.ID] = true
			}
		}
		return out
	}
	waitFor(t, 60*time.Second, "every payment's event delivered", func() (bool, string) {
		a, b := at(first), at(second)
		missing := 0
		for _, id := range append(append([]string(nil), early...), late...) {
			if !a[id] && !b[id] {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d missing", missing, len(early)+len(late))
	})
	a := at(first)
	t.Logf("%d payments before the reload was seen, %d after; events at the first application %d, at the second %d; %d reads",
		len(early), len(late), len(a), len(at(second)), reads.Load())
	for _, id := range late {
		if a[id] {
			t.Errorf("payment %s, paid after the reload, was delivered to the old URL", id)
		}
	}
	if got := sc.metric("paysidecar_config_info"); got != 1 {
		t.Errorf("paysidecar_config_info sums to %v: the old hash's series is left", got)
	}
	if logs := sc.logs.String(); !strings.Contains(logs, "configuration reloaded") || !strings.Contains(logs, "hash="+newHash) ||
		strings.Contains(logs, "token-two") || strings.Contains(logs, strings.TrimPrefix(otherWebhookSecret, "whsec_")) {
		t.Errorf("the log does not say the new hash, or shows a secret:\n%s", tail(logs, 20))
	}

	// A file that is not valid changes nothing and is reported with its
	// line.
	cm.update(reloadYAML("token-three", first, "whsec_c2hvcnQ=", ""))
	waitFor(t, 30*time.Second, "the invalid file reported", func() (bool, string) {
		return sc.metric("paysidecar_config_reloads_total", `result="invalid"`) == 1, ""
	})
	if logs := sc.logs.String(); !strings.Contains(logs, "config.yaml:5: webhook.secret") {
		t.Errorf("the log does not name the bad line:\n%s", tail(logs, 10))
	}
	if sc.metric("paysidecar_config_info", `hash="`+newHash+`"`) != 1 || sc.metric("paysidecar_config_last_reload_successful") != 0 {
		t.Error("an invalid file moved the live hash, or last_reload_successful is not 0")
	}
	var out any
	if err := clients["token-two"].Do(ctx, http.MethodGet, "/v1/flows", nil, &out); err != nil {
		t.Errorf("after an invalid file the token in force changed: %v", err)
	}

	// A change that needs a restart is reported; what can change still
	// does.
	cm.update(reloadYAML("token-one", second, otherWebhookSecret, "notify:\n  max_body_bytes: 1000\n"))
	waitFor(t, 30*time.Second, "the restart reported", func() (bool, string) {
		return sc.metric("paysidecar_config_restart_required") == 1, ""
	})
	if logs := sc.logs.String(); !strings.Contains(logs, "needs a restart") || !strings.Contains(logs, "notify.max_body_bytes") {
		t.Errorf("the log does not say which setting needs a restart:\n%s", tail(logs, 10))
	}
	if err := clients["token-one"].Do(ctx, http.MethodGet, "/v1/flows", nil, &out); err != nil {
		t.Errorf("the token did not change with a setting that needs a restart: %v", err)
	}
	if h := configHash(t, env); sc.metric("paysidecar_config_info", `hash="`+h+`"`) != 0 {
		t.Error("the live hash is the file's, although one of its settings waits for a restart")
	}
}

// SIGHUP reloads the configuration of the running binary: a token read
// from a file changes, and a signal with nothing changed is a reload too.
func TestSIGHUPReloads(t *testing.T) {
	sb := sandboxtest.Start(t)
	secrets := t.TempDir()
	tokenFile := filepath.Join(secrets, "token")
	if err := os.WriteFile(tokenFile, []byte("file-token-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), "PAYSIDECAR_API__TOKEN_FILE="+tokenFile)
	sc := startSidecar(t, env, api, notify, admin)
	ctx := ctxTimeout(t, 60*time.Second)

	if err := sc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the reload the signal asked for", func() (bool, string) {
		return sc.metric("paysidecar_config_reloads_total", `result="unchanged"`) == 1, ""
	})
	if logs := sc.logs.String(); !strings.Contains(logs, "signal=hangup") || !strings.Contains(logs, "nothing changed") {
		t.Errorf("the log does not report the signal's reload:\n%s", tail(logs, 10))
	}

	if err := os.WriteFile(tokenFile, []byte("file-token-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	c := client.New(sc.API, client.WithToken("file-token-two"))
	waitFor(t, 30*time.Second, "the new token in force", func() (bool, string) {
		var out any
		err := c.Do(ctx, http.MethodGet, "/v1/flows", nil, &out)
		return err == nil, fmt.Sprint(err)
	})
	var out any
	var ae *client.APIError
	if err := client.New(sc.API, client.WithToken("file-token-one")).Do(ctx, http.MethodGet, "/v1/flows", nil, &out); !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized {
		t.Errorf("the old token after the reload: %v", err)
	}
	select {
	case <-sc.exited:
		t.Fatal("the sidecar exited on SIGHUP")
	default:
	}
}

// A flow's settings and the log level change live: the running plugin is
// reconfigured, not restarted, and debug lines appear once the level is
// debug.
func TestFlowSettingsAndLogLevelReload(t *testing.T) {
	sb := sandboxtest.Start(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	write := func(level, appID string, more ...string) {
		t.Helper()
		tmp := filepath.Join(dir, ".config.yaml.tmp")
		content := fmt.Sprintf("log:\n  level: %s\nplugins:\n  flows:\n    wechat-jsapi:\n      settings:\n        app_id: %s\n", level, appID)
		for _, m := range more {
			content += "        " + m + "\n"
		}
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		// As an editor saves: a new file renamed over the old.
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("info", "wxfirst000000001")
	env, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), "PAYSIDECAR_CONFIG="+path)
	// The level comes from the file here, not the harness's variable.
	for i, e := range env {
		if strings.HasPrefix(e, "PAYSIDECAR_LOG__LEVEL=") {
			env = append(env[:i], env[i+1:]...)
			break
		}
	}
	sc := startSidecar(t, env, api, notify, admin)
	ctx := ctxTimeout(t, 60*time.Second)
	appID := func() string {
		var out struct{ URL string }
		if err := sc.Client.Do(ctx, http.MethodPost, "/v1/oauth/authorize-url",
			map[string]string{"flow": "wechat-jsapi", "redirect_uri": "https://shop.example/cb"}, &out); err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`appid=([^&]+)`).FindStringSubmatch(out.URL)
		if m == nil {
			t.Fatalf("no appid in %s", out.URL)
		}
		return m[1]
	}
	if got := appID(); got != "wxfirst000000001" {
		t.Fatalf("app id %s, want the file's", got)
	}
	pid := sc.pluginPID("wechat-jsapi")

	write("debug", "wxsecond00000002")
	waitFor(t, 30*time.Second, "the flow's new app id", func() (bool, string) {
		got := appID()
		return got == "wxsecond00000002", got
	})
	if sc.pluginPID("wechat-jsapi") != pid || sc.metric("paysidecar_plugin_restarts_total", `plugin="wechat-jsapi"`) != 0 {
		t.Error("the plugin was restarted rather than reconfigured")
	}
	if h := configHash(t, env); sc.metric("paysidecar_config_info", `hash="`+h+`"`) != 1 {
		t.Errorf("the live hash is not the file's %s", h)
	}
	// Debug lines now: the watcher logs each event in its directory.
	if err := os.WriteFile(filepath.Join(dir, "unrelated"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a debug line", func() (bool, string) {
		return strings.Contains(sc.logs.String(), "level=DEBUG"), ""
	})

	// Settings the plugin's schema refuses change nothing.
	write("debug", "wxthird000000003", "colour: red")
	waitFor(t, 30*time.Second, "the refused settings reported", func() (bool, string) {
		return sc.metric("paysidecar_config_reloads_total", `result="failed"`) >= 1, ""
	})
	if got := appID(); got != "wxsecond00000002" {
		t.Errorf("after refused settings the app id is %s", got)
	}
	if !strings.Contains(sc.logs.String(), "colour") {
		t.Errorf("the log does not name the refused setting:\n%s", tail(sc.logs.String(), 10))
	}
}
