package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// withFlow is the defaults with the wechat-jsapi flow configured.
func withFlow() Config {
	c := Defaults()
	on := true
	c.Plugins.Flows = map[string]FlowConfig{"wechat-jsapi": {Enabled: &on, Settings: map[string]string{
		"app_id": "wxsandbox00000001", "oauth_base": "http://127.0.0.1:8900", "api_base": "http://127.0.0.1:8900",
	}}}
	return c
}

func TestSettingsNameEveryKey(t *testing.T) {
	cfg := withFlow()
	s := cfg.Settings()
	for _, key := range []string{"webhook.url", "api.token_file", "reconcile.dir"} {
		if v, ok := s[key]; ok {
			t.Errorf("%s = %#v: a setting at its zero value is not left out", key, v)
		}
	}
	for key, want := range map[string]any{
		"log.level":        "info",
		"requery.interval": time.Second,
		"plugins.flows.wechat-jsapi.settings.app_id": "wxsandbox00000001",
		"plugins.flows.wechat-jsapi.enabled":         true,
		"plugins.dir":                                "bin/plugins",
		"upstream.passthrough":                       cfg.Upstream.Passthrough,
		"reconcile.schedule":                         "10:00",
	} {
		got, ok := s[key]
		if !ok {
			t.Errorf("no setting %s", key)
			continue
		}
		if !equalSetting(got, want) {
			t.Errorf("%s = %#v, want %#v", key, got, want)
		}
	}
	for key := range s {
		if !strings.HasPrefix(key, "plugins.flows.") && !strings.HasPrefix(key, "keys.") && !known(key) {
			t.Errorf("setting %s names no key of Config", key)
		}
	}
}

func equalSetting(a, b any) bool {
	if x, ok := a.([]string); ok {
		y, ok := b.([]string)
		return ok && slices.Equal(x, y)
	}
	return a == b
}

func TestChangedAndHash(t *testing.T) {
	base := withFlow()
	base.API.Token = "first-token"
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"a string", func(c *Config) { c.Log.Level = "debug" }, []string{"log.level"}},
		{"a secret", func(c *Config) { c.API.Token = "second-token" }, []string{"api.token"}},
		{"a list", func(c *Config) { c.Webhook.Schedule = []time.Duration{time.Second} }, []string{"webhook.schedule"}},
		{"a map entry added", func(c *Config) {
			f := c.Plugins.Flows["wechat-jsapi"]
			f.Settings["x"] = "1"
		}, []string{"plugins.flows.wechat-jsapi.settings.x"}},
		{"a flow added", func(c *Config) {
			c.Plugins.Flows["alipay-native"] = FlowConfig{Path: "/bin/a", Settings: map[string]string{}}
		}, []string{"plugins.flows.alipay-native.path"}},
		{"a zero value written out", func(c *Config) {
			c.Plugins.Flows["alipay-native"] = FlowConfig{SHA256: "", Keys: []string{}}
		}, nil},
		{"a value set to zero", func(c *Config) { c.API.Token = "" }, []string{"api.token"}},
		{"a map entry removed", func(c *Config) {
			delete(c.Plugins.Flows["wechat-jsapi"].Settings, "api_base")
		}, []string{"plugins.flows.wechat-jsapi.settings.api_base"}},
		{"a flow disabled (a pointer to a zero value)", func(c *Config) {
			off := false
			f := c.Plugins.Flows["wechat-jsapi"]
			f.Enabled = &off
			c.Plugins.Flows["wechat-jsapi"] = f
		}, []string{"plugins.flows.wechat-jsapi.enabled"}},
		{"two", func(c *Config) { c.API.Listen = "127.0.0.1:1"; c.Store.Driver = "postgres" }, []string{"api.listen", "store.driver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withFlow()
			c.API.Token = "first-token"
			tt.change(&c)
			got := Changed(base.Settings(), c.Settings())
			if !slices.Equal(got, tt.want) {
				t.Errorf("changed = %v, want %v", got, tt.want)
			}
			if same := base.Hash() == c.Hash(); same != (len(tt.want) == 0) {
				t.Errorf("hash %s vs %s: the same is %v, want %v", base.Hash(), c.Hash(), same, len(tt.want) == 0)
			}
		})
	}
	h := base.Hash()
	if len(h) != 12 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("hash %q is not 12 hex digits", h)
	}
	if base.Hash() != h {
		t.Error("the hash of one configuration changes from call to call")
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := write("token", "t0ken-from-a-file\n")
	secret := write("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	app := write("app", "s3cret")
	cfg, err := Load("", func() []string {
		return []string{
			"PAYSIDECAR_API__TOKEN_FILE=" + token,
			"PAYSIDECAR_WEBHOOK__URL=http://127.0.0.1:9/hook",
			"PAYSIDECAR_WEBHOOK__SECRET_FILE=" + secret,
			"PAYSIDECAR_PLUGINS__FLOWS__WECHAT_JSAPI__SETTINGS_FILES__APP_SECRET=" + app,
			"PAYSIDECAR_PLUGINS__FLOWS__WECHAT_MINIAPP__SETTINGS_FILES__APP_SECRET=" + app,
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{app, secret, token}
	slices.Sort(want)
	if got := cfg.SecretFiles(); !slices.Equal(got, want) {
		t.Errorf("secret files %v, want %v", got, want)
	}
	if len(Defaults().SecretFiles()) != 0 {
		t.Error("the defaults read secret files")
	}
}
