package pluginhost

import "os"

// baseEnv names the variables of the host's environment every plugin gets:
// what a process needs to find programs, temporary files, time zones and
// its way to WeChat through a proxy. The rest of the host's environment,
// which may hold the merchant's key, stays in the host.
var baseEnv = []string{
	"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
}

// pluginEnv returns the environment of a plugin process: the base
// variables and extra, each as set in the host.
func pluginEnv(extra []string) []string {
	env := make([]string, 0, len(baseEnv)+len(extra))
	seen := map[string]bool{}
	for _, names := range [][]string{baseEnv, extra} {
		for _, name := range names {
			if seen[name] {
				continue
			}
			seen[name] = true
			if v, ok := os.LookupEnv(name); ok {
				env = append(env, name+"="+v)
			}
		}
	}
	return env
}
