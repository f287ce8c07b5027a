package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretMarker is a secret the fuzzer's configurations carry; no error
// may show it.
const secretMarker = "s3cr3t-marker"

func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "..", "config.example.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example), "")
	f.Add("", "PAYSIDECAR_UPSTREAM__SYS_ID=6666000123\nPAYSIDECAR_WEBHOOK__SCHEDULE=1s,2s\nPAYSIDECAR_NOTIFY__RATE_PER_SOURCE=2.5")
	f.Add("notify:\n  max_conns: -1\n  read_timeout: forever\napi: 5\n", "PAYSIDECAR_API__LISTEN=nonsense")
	f.Add("upstream:\n  base_url: https://api.huifu.com\n  timeout: 1h\nplugins:\n  wechat_jsapi:\n    settings: [1, 2]\n", "")
	f.Add("webhook:\n  url: http://h/x\n  schedule: [1s, -1s]\n", "PAYSIDECAR_WEBHOOK__SECRET=")
	f.Add(":\n- [\n", "PAYSIDECAR_=x\nPAYSIDECAR_A__B__C=1")
	f.Add("profile: 1\nlog: {level: [x]}\n", "PAYSIDECAR_NOTIFY__MAX_CONNS=1e400")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml, environ string) {
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		env := []string{"PAYSIDECAR_API__TOKEN=" + secretMarker, "PAYSIDECAR_WEBHOOK__SECRET=whsec_" + secretMarker}
		for _, line := range strings.Split(environ, "\n") {
			if strings.HasPrefix(line, EnvPrefix) {
				env = append(env, line)
			}
		}
		cfg, err := Load(path, func() []string { return env })
		if err != nil {
			if !strings.Contains(yaml+environ, secretMarker) && strings.Contains(err.Error(), secretMarker) {
				t.Fatalf("the error shows a secret: %v", err)
			}
			var cerr *Error
			if errors.As(err, &cerr) && len(cerr.Problems) == 0 {
				t.Fatal("a validation error without problems")
			}
			return
		}
		// What loads is valid by the same rules when checked again.
		e := &Error{}
		cfg.validate(e)
		if len(e.Problems) > 0 {
			t.Fatalf("loaded a configuration with problems: %v", e)
		}
	})
}
