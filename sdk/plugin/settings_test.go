package plugin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// schema has a setting of every type.
var schema = plugin.Schema{
	{Key: "app_id", Required: true, SandboxDefault: "wxsandbox"},
	{Key: "app_secret", Required: true, Secret: true, SandboxDefault: "sandbox-secret"},
	{Key: "api_base", Type: plugin.TypeURL, Default: "https://api.example.com", SandboxDefault: plugin.SandboxURL},
	{Key: "oauth_base", Type: plugin.TypeURL, Default: "https://open.example.com", SandboxDefault: plugin.SandboxURL + "/oauth"},
	{Key: "retries", Type: plugin.TypeInt, Default: "3"},
	{Key: "use_openid", Type: plugin.TypeBool, Default: "false"},
	{Key: "timeout", Type: plugin.TypeDuration, Default: "10s"},
	{Key: "scope", Type: plugin.TypeEnum, Enum: []string{"base", "userinfo"}, Default: "base"},
	{Key: "note"},
}

func TestSchemaApply(t *testing.T) {
	production := plugin.Environment{}
	sandbox := plugin.Environment{Sandbox: true, SandboxURL: "http://127.0.0.1:8900/"}
	cases := []struct {
		name     string
		raw      map[string]string
		env      plugin.Environment
		want     map[string]string
		problems []string // "key: message" prefixes, in key order
	}{
		{
			name: "defaults filled",
			raw:  map[string]string{"app_id": " wx1 ", "app_secret": "s"},
			env:  production,
			want: map[string]string{"app_id": "wx1", "app_secret": "s", "api_base": "https://api.example.com", "oauth_base": "https://open.example.com",
				"retries": "3", "use_openid": "false", "timeout": "10s", "scope": "base"},
		},
		{
			name: "sandbox defaults, sandbox URL substituted",
			raw:  map[string]string{},
			env:  sandbox,
			want: map[string]string{"app_id": "wxsandbox", "app_secret": "sandbox-secret", "api_base": "http://127.0.0.1:8900", "oauth_base": "http://127.0.0.1:8900/oauth",
				"retries": "3", "use_openid": "false", "timeout": "10s", "scope": "base"},
		},
		{
			name: "given values win over sandbox defaults and are normalized",
			raw:  map[string]string{"app_id": "wx2", "app_secret": "s", "api_base": "https://api.weixin.qq.com/", "use_openid": "1", "retries": "0", "note": "  n  "},
			env:  sandbox,
			want: map[string]string{"app_id": "wx2", "app_secret": "s", "api_base": "https://api.weixin.qq.com", "oauth_base": "http://127.0.0.1:8900/oauth",
				"retries": "0", "use_openid": "true", "timeout": "10s", "scope": "base", "note": "n"},
		},
		{
			name:     "missing required",
			raw:      map[string]string{"app_secret": "  "},
			env:      production,
			problems: []string{"app_id: required", "app_secret: required"},
		},
		{
			name:     "unknown settings",
			raw:      map[string]string{"app_id": "a", "app_secret": "b", "appsecret": "c", "zzz": "1"},
			env:      production,
			problems: []string{"appsecret: unknown setting", "zzz: unknown setting"},
		},
		{
			name: "wrong types",
			raw: map[string]string{"app_id": "a", "app_secret": "b", "retries": "3.5", "use_openid": "yes please", "timeout": "-1s",
				"scope": "everything", "api_base": "ftp://files.example.com", "oauth_base": "https://u:p@open.example.com/?x=1"},
			env: production,
			problems: []string{"api_base: must be an absolute http or https URL", "oauth_base: must be an absolute http or https URL",
				"retries: must be an integer", "scope: must be one of base, userinfo", "timeout: must be a positive duration",
				"use_openid: must be true or false"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := schema.Apply(c.raw, c.env)
			if c.problems != nil {
				var se *plugin.SettingsError
				if !errors.As(err, &se) || len(se.Problems) != len(c.problems) {
					t.Fatalf("Apply error = %v, want %d problems %v", err, len(c.problems), c.problems)
				}
				for i, p := range se.Problems {
					if !strings.HasPrefix(p.Key+": "+p.Message, c.problems[i]) {
						t.Errorf("problem %d = %s: %s, want %s", i, p.Key, p.Message, c.problems[i])
					}
				}
				for _, v := range c.raw {
					if strings.TrimSpace(v) != "" && len(v) > 3 && strings.Contains(err.Error(), v) {
						t.Errorf("error %q shows the value %q", err, v)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if keys := got.Keys(); len(keys) != len(c.want) {
				t.Errorf("keys %v, want %d", keys, len(c.want))
			}
			for k, v := range c.want {
				if got.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, got.Get(k), v)
				}
			}
		})
	}

	got, err := schema.Apply(map[string]string{"app_id": "a", "app_secret": "b", "retries": "-7", "use_openid": "TRUE", "timeout": "1m30s"}, production)
	if err != nil {
		t.Fatal(err)
	}
	if got.Int("retries") != -7 || !got.Bool("use_openid") || got.Duration("timeout") != 90*time.Second || got.Has("note") || got.Get("note") != "" {
		t.Errorf("typed accessors: retries %d, use_openid %v, timeout %v, note %v", got.Int("retries"), got.Bool("use_openid"), got.Duration("timeout"), got.Has("note"))
	}
}

func TestSchemaCheck(t *testing.T) {
	if err := schema.Check(); err != nil {
		t.Fatalf("a good schema: %v", err)
	}
	cases := []struct {
		name string
		s    plugin.Schema
		want string
	}{
		{"empty key", plugin.Schema{{Key: ""}}, "must be lower-case"},
		{"upper-case key", plugin.Schema{{Key: "AppID"}}, "must be lower-case"},
		{"twice", plugin.Schema{{Key: "a"}, {Key: "a"}}, "declared twice"},
		{"unknown type", plugin.Schema{{Key: "a", Type: "float"}}, "unknown type"},
		{"enum without values", plugin.Schema{{Key: "a", Type: plugin.TypeEnum}}, "lists its values"},
		{"bad default", plugin.Schema{{Key: "a", Type: plugin.TypeInt, Default: "ten"}}, "must be an integer"},
		{"bad sandbox default", plugin.Schema{{Key: "a", Type: plugin.TypeURL, SandboxDefault: "nowhere"}}, "must be an absolute"},
	}
	for _, c := range cases {
		if err := c.s.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Check = %v, want %q", c.name, err, c.want)
		}
	}
}

// TestSecretsAreRedacted prints and logs Settings every way a flow might
// and checks that a secret value never shows while the others do.
func TestSecretsAreRedacted(t *testing.T) {
	const secret = "topsecret-value-42"
	s, err := schema.Apply(map[string]string{"app_id": "wx-visible", "app_secret": secret}, plugin.Environment{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Get("app_secret") != secret {
		t.Fatalf("Get does not return the secret to the flow")
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("configured", "settings", s)
	var text bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("configured", "settings", s)
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%+v": fmt.Sprintf("%+v", s), "%#v": fmt.Sprintf("%#v", s), "Sprint": fmt.Sprint(s),
		"String": s.String(), "JSON": string(js), "slog JSON": logged.String(), "slog text": text.String(),
		"struct %+v": fmt.Sprintf("%+v", plugin.Config{Settings: s}),
	}
	for how, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the secret: %s", how, out)
		}
		if how != "struct %+v" && (!strings.Contains(out, "wx-visible") || !strings.Contains(out, "[redacted]")) {
			t.Errorf("%s does not show the other settings with the secret redacted: %s", how, out)
		}
	}
}

func TestErrorFormatting(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{plugin.Errorf(plugin.CodeInvalidBuyer, "buyer.openid", "openid %s", "missing"), "invalid_buyer: openid missing (field buyer.openid)"},
		{plugin.Unsupported("alipay-native", "AuthorizeURL"), "unsupported: flow alipay-native does not support AuthorizeURL"},
	}
	for _, c := range cases {
		if c.err.Error() != c.want {
			t.Errorf("Error() = %q, want %q", c.err.Error(), c.want)
		}
	}
	if plugin.ErrorCode(nil) != "" {
		t.Errorf("ErrorCode(nil) = %q", plugin.ErrorCode(nil))
	}
	if errors.Is(plugin.Unsupported("x", "y"), &plugin.Error{Code: plugin.CodeInternal}) {
		t.Errorf("errors.Is matches a different code")
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"wechat-jsapi": true, "unionpay-native": true, "mock": true, "v2": true,
		"": false, "WeChat": false, "wechat_jsapi": false, "-x": false, "x-": false, "a--b": false, "a.b": false, "a/b": false,
		strings.Repeat("a", 65): false,
	} {
		if got := plugin.ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}
