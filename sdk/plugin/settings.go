package plugin

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Settings are a flow's own settings, as configured for it in the host's
// configuration file. Values may be secret: never log a Settings value.
type Settings map[string]string

// Get returns the value of key with surrounding spaces removed, or "".
func (s Settings) Get(key string) string { return strings.TrimSpace(s[key]) }

// Required returns the value of key, or an *Error naming key when it is
// missing or blank.
func (s Settings) Required(key string) (string, error) {
	v := s.Get(key)
	if v == "" {
		return "", Errorf(CodeInvalidRequest, key, "setting %s is required", key)
	}
	return v, nil
}

// Bool returns the boolean value of key (true/false/1/0 and the other forms
// strconv.ParseBool accepts), def when it is absent, or an *Error naming
// key when it is not a boolean.
func (s Settings) Bool(key string, def bool) (bool, error) {
	v := s.Get(key)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, Errorf(CodeInvalidRequest, key, "setting %s must be true or false", key)
	}
	return b, nil
}

// Duration returns the value of key parsed by time.ParseDuration ("10s",
// "1m30s"), def when it is absent, or an *Error naming key when it is not a
// positive duration.
func (s Settings) Duration(key string, def time.Duration) (time.Duration, error) {
	v := s.Get(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, Errorf(CodeInvalidRequest, key, "setting %s must be a positive duration such as 10s", key)
	}
	return d, nil
}

// BaseURL returns the value of key, or def when it is absent, as an
// absolute http or https URL without query, fragment or trailing slash,
// ready to have a path appended. It returns an *Error naming key when the
// value is not such a URL.
func (s Settings) BaseURL(key, def string) (string, error) {
	v := s.Get(key)
	if v == "" {
		v = def
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", Errorf(CodeInvalidRequest, key, "setting %s must be an absolute http or https URL without query or credentials", key)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// CheckKeys returns an *Error naming the first key of s (in sorted order)
// that specs does not list, so that a misspelt setting fails loudly
// instead of being ignored. A flow without settings accepts none.
func (s Settings) CheckKeys(specs []SettingSpec) error {
	known := make(map[string]bool, len(specs))
	for _, sp := range specs {
		known[sp.Key] = true
	}
	var unknown []string
	for k := range s {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	first := unknown[0]
	for _, k := range unknown[1:] {
		if k < first {
			first = k
		}
	}
	return Errorf(CodeInvalidRequest, first, "unknown setting %s", first)
}
