package plugin_test

import (
	"errors"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

func TestSettings(t *testing.T) {
	s := plugin.Settings{
		"app_id":   " wx123 ",
		"blank":    "   ",
		"flag":     "true",
		"badflag":  "yes please",
		"base":     "https://api.example.com/",
		"withpath": "http://127.0.0.1:8080/wx",
		"query":    "https://api.example.com/?a=1",
		"relative": "/just/a/path",
		"ftp":      "ftp://files.example.com",
		"creds":    "https://user:pw@api.example.com",
	}
	if v, err := s.Required("app_id"); err != nil || v != "wx123" {
		t.Errorf("Required(app_id) = %q, %v", v, err)
	}
	for _, key := range []string{"missing", "blank"} {
		_, err := s.Required(key)
		var pe *plugin.Error
		if !errors.As(err, &pe) || pe.Code != plugin.CodeInvalidRequest || pe.Field != key {
			t.Errorf("Required(%s) error = %v, want invalid_request naming it", key, err)
		}
	}

	boolCases := []struct {
		key     string
		def     bool
		want    bool
		wantErr bool
	}{
		{"flag", false, true, false},
		{"missing", true, true, false},
		{"missing", false, false, false},
		{"badflag", false, false, true},
	}
	for _, c := range boolCases {
		got, err := s.Bool(c.key, c.def)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("Bool(%s, %v) = %v, %v", c.key, c.def, got, err)
		}
		if err != nil && plugin.ErrorCode(err) != plugin.CodeInvalidRequest {
			t.Errorf("Bool(%s) error code = %q", c.key, plugin.ErrorCode(err))
		}
	}

	durCases := []struct {
		v       string
		want    time.Duration
		wantErr bool
	}{
		{"", 7 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{"0s", 0, true},
		{"-1s", 0, true},
		{"ten", 0, true},
	}
	for _, c := range durCases {
		got, err := plugin.Settings{"timeout": c.v}.Duration("timeout", 7*time.Second)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("Duration(%q) = %v, %v", c.v, got, err)
		}
	}

	urlCases := []struct {
		key, def, want string
		wantErr        bool
	}{
		{"base", "", "https://api.example.com", false},
		{"withpath", "", "http://127.0.0.1:8080/wx", false},
		{"missing", "https://open.weixin.qq.com", "https://open.weixin.qq.com", false},
		{"query", "", "", true},
		{"relative", "", "", true},
		{"ftp", "", "", true},
		{"creds", "", "", true},
		{"missing", "", "", true},
	}
	for _, c := range urlCases {
		got, err := s.BaseURL(c.key, c.def)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("BaseURL(%s) = %q, %v; want %q, error %v", c.key, got, err, c.want, c.wantErr)
		}
		var pe *plugin.Error
		if err != nil && (!errors.As(err, &pe) || pe.Field != c.key) {
			t.Errorf("BaseURL(%s) error does not name the key: %v", c.key, err)
		}
	}
}

func TestCheckKeys(t *testing.T) {
	specs := []plugin.SettingSpec{{Key: "app_id"}, {Key: "app_secret", Secret: true}}
	cases := []struct {
		name  string
		s     plugin.Settings
		specs []plugin.SettingSpec
		field string
	}{
		{"all known", plugin.Settings{"app_id": "a", "app_secret": "b"}, specs, ""},
		{"none given", plugin.Settings{}, specs, ""},
		{"no specs accepts none", plugin.Settings{"whatever": "x"}, nil, "whatever"},
		{"no specs, no settings", plugin.Settings{}, nil, ""},
		{"first unknown in order", plugin.Settings{"zz": "1", "app_idd": "2", "app_id": "a"}, specs, "app_idd"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.CheckKeys(c.specs)
			if c.field == "" {
				if err != nil {
					t.Fatalf("CheckKeys = %v", err)
				}
				return
			}
			var pe *plugin.Error
			if !errors.As(err, &pe) || pe.Field != c.field || pe.Code != plugin.CodeInvalidRequest {
				t.Fatalf("CheckKeys = %v, want invalid_request naming %s", err, c.field)
			}
		})
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
