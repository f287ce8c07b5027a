package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSettingsNameEveryKey(t *testing.T) {
	cfg := Defaults()
	s := cfg.Settings()
	for key, want := range map[string]any{
		"webhook.url":                              "",
		"log.level":                                "info",
		"api.token_file":                           "",
		"requery.interval":                         time.Second,
		"plugins.wechat_jsapi.settings.app_id":     "wxsandbox00000001",
		"plugins.wechat_miniapp.enabled":           true,
		"upstream.passthrough":                     cfg.Upstream.Passthrough,
		"reconcile.schedule":                       "10:00",
		"plugins.wechat_miniapp.settings.api_base": "http://127.0.0.1:8900",
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
		if !strings.Contains(key, ".settings") && !known(key) {
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
	base := Defaults()
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
			c.Plugins.AlipayNative.Settings = map[string]string{"x": "1"}
		}, []string{"plugins.alipay_native.settings.x"}},
		{"a map entry removed", func(c *Config) {
			c.Plugins.WeChatJSAPI.Settings = map[string]string{"app_id": "wxsandbox00000001", "oauth_base": "http://127.0.0.1:8900"}
		}, []string{"plugins.wechat_jsapi.settings.api_base"}},
		{"two", func(c *Config) { c.API.Listen = "127.0.0.1:1"; c.Store.Driver = "postgres" }, []string{"api.listen", "store.driver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
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
			"PAYSIDECAR_PLUGINS__WECHAT_JSAPI__SETTINGS_FILES__APP_SECRET=" + app,
			"PAYSIDECAR_PLUGINS__WECHAT_MINIAPP__SETTINGS_FILES__APP_SECRET=" + app,
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
