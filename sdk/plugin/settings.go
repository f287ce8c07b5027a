package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
)

// SettingType is the type of a setting's value. Values always travel as
// text; the type says which text is valid and how a flow reads it.
type SettingType string

// The setting types.
const (
	// TypeString takes any text.
	TypeString SettingType = "string"
	// TypeInt takes a decimal integer; read it with Settings.Int.
	TypeInt SettingType = "int"
	// TypeBool takes true/false (and the other forms strconv.ParseBool
	// accepts); read it with Settings.Bool.
	TypeBool SettingType = "bool"
	// TypeDuration takes a positive duration such as "10s"; read it with
	// Settings.Duration.
	TypeDuration SettingType = "duration"
	// TypeURL takes an absolute http or https URL without query,
	// fragment or credentials; its trailing slash is removed, so a path
	// can be appended.
	TypeURL SettingType = "url"
	// TypeEnum takes one of the values listed in SettingSpec.Enum.
	TypeEnum SettingType = "enum"
)

// SandboxURL stands for the sandbox upstream's base URL in a
// SettingSpec.SandboxDefault, e.g. "{sandbox_url}" for a flow whose channel
// the sandbox emulates too.
const SandboxURL = "{sandbox_url}"

// SettingSpec declares one setting a flow accepts. A flow declares its
// settings once, in Info; the SDK enforces them before Configure sees
// them, and the host checks a configuration against them without starting
// traffic.
type SettingSpec struct {
	// Key is the setting's name, e.g. "app_id": lower-case letters,
	// digits and underscores.
	Key string
	// Type is the type of the value; empty means TypeString.
	Type SettingType
	// Required means the setting must have a value, given or defaulted.
	Required bool
	// Secret means the value must never be logged or displayed.
	Secret bool
	// Default is the value used when the setting is absent.
	Default string
	// SandboxDefault is used instead of Default when the host runs
	// against its sandbox upstream; SandboxURL in it is replaced by the
	// sandbox's base URL. It may be set even for a Required setting, which
	// then needs no configuration against the sandbox.
	SandboxDefault string
	// Enum lists the values of a TypeEnum setting.
	Enum []string
	// Description says what the setting is for, in one sentence.
	Description string
	// PerMerchant means a merchant of a service provider may have its
	// own value (Config.Merchants); the SDK refuses a merchant's value of
	// any other setting.
	PerMerchant bool
}

func (sp SettingSpec) typ() SettingType {
	if sp.Type == "" {
		return TypeString
	}
	return sp.Type
}

// Schema is a flow's settings, as declared in Info.Settings.
type Schema []SettingSpec

// Environment says what a plugin runs against.
type Environment struct {
	// Sandbox is true when the host's upstream is its sandbox emulator.
	Sandbox bool
	// SandboxURL is the sandbox's base URL when Sandbox is true, without
	// a trailing slash.
	SandboxURL string
}

// SettingProblem is one setting a schema refuses.
type SettingProblem struct {
	// Key names the setting.
	Key string
	// Message says what is wrong, never showing a secret value.
	Message string
}

// SettingsError lists every setting a schema refused, in key order.
type SettingsError struct {
	Problems []SettingProblem
}

// Error implements error, one problem after the other.
func (e *SettingsError) Error() string {
	parts := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		parts = append(parts, p.Key+": "+p.Message)
	}
	return "invalid settings: " + strings.Join(parts, "; ")
}

// Check reports mistakes in the schema itself: keys that are empty,
// repeated or malformed, unknown types, an enum without values, or a
// default that its own type refuses. A flow's tests should call it.
func (s Schema) Check() error {
	seen := map[string]bool{}
	var errs []error
	for i, sp := range s {
		if !validKey(sp.Key) {
			errs = append(errs, fmt.Errorf("setting %d: key %q must be lower-case letters, digits and underscores", i, sp.Key))
			continue
		}
		if seen[sp.Key] {
			errs = append(errs, fmt.Errorf("setting %s: declared twice", sp.Key))
		}
		seen[sp.Key] = true
		switch sp.typ() {
		case TypeString, TypeInt, TypeBool, TypeDuration, TypeURL:
		case TypeEnum:
			if len(sp.Enum) == 0 {
				errs = append(errs, fmt.Errorf("setting %s: an enum lists its values", sp.Key))
			}
		default:
			errs = append(errs, fmt.Errorf("setting %s: unknown type %q", sp.Key, sp.Type))
			continue
		}
		for _, d := range []string{sp.Default, strings.ReplaceAll(sp.SandboxDefault, SandboxURL, "http://127.0.0.1:1")} {
			if d == "" {
				continue
			}
			if _, msg := sp.parse(d); msg != "" {
				errs = append(errs, fmt.Errorf("setting %s: default %q: %s", sp.Key, d, msg))
			}
		}
	}
	return errors.Join(errs...)
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Apply checks raw settings against the schema and returns them with
// defaults filled in: a setting that is absent or blank takes its
// SandboxDefault (in the sandbox) or its Default; then every setting must
// be declared, every required one must have a value, and every value must
// be valid for its type. Surrounding spaces are removed and URLs lose their
// trailing slash. Every problem is reported at once in a *SettingsError;
// messages never show a value of a secret setting.
func (s Schema) Apply(raw map[string]string, env Environment) (Settings, error) {
	out := Settings{values: map[string]string{}, secret: map[string]bool{}}
	var problems []SettingProblem
	declared := map[string]SettingSpec{}
	for _, sp := range s {
		declared[sp.Key] = sp
	}
	for k := range raw {
		if _, ok := declared[k]; !ok {
			problems = append(problems, SettingProblem{Key: k, Message: "unknown setting"})
		}
	}
	for _, sp := range s {
		if sp.Secret {
			out.secret[sp.Key] = true
		}
		v := strings.TrimSpace(raw[sp.Key])
		if v == "" && env.Sandbox && sp.SandboxDefault != "" {
			v = strings.ReplaceAll(sp.SandboxDefault, SandboxURL, strings.TrimRight(env.SandboxURL, "/"))
		}
		if v == "" {
			v = sp.Default
		}
		if v == "" {
			if sp.Required {
				problems = append(problems, SettingProblem{Key: sp.Key, Message: "required"})
			}
			continue
		}
		norm, msg := sp.parse(v)
		if msg != "" {
			problems = append(problems, SettingProblem{Key: sp.Key, Message: msg})
			continue
		}
		out.values[sp.Key] = norm
	}
	if len(problems) > 0 {
		sort.Slice(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
		return Settings{}, &SettingsError{Problems: problems}
	}
	return out, nil
}

// parse checks v against the spec's type and returns its normal form, or
// a message saying what the type wants (never repeating v).
func (sp SettingSpec) parse(v string) (string, string) {
	switch sp.typ() {
	case TypeInt:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return "", "must be an integer"
		}
	case TypeBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return "", "must be true or false"
		}
		return strconv.FormatBool(b), ""
	case TypeDuration:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return "", "must be a positive duration such as 10s"
		}
	case TypeURL:
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
			return "", "must be an absolute http or https URL without query, fragment or credentials"
		}
		return strings.TrimRight(u.String(), "/"), ""
	case TypeEnum:
		if !slices.Contains(sp.Enum, v) {
			return "", "must be one of " + strings.Join(sp.Enum, ", ")
		}
	}
	return v, ""
}

// Settings are a flow's settings after its schema was applied: every
// declared setting with a value is present and valid for its type. A
// Settings prints and logs with the values of secret settings redacted,
// so it is safe to log as a whole; Get still returns them.
type Settings struct {
	values map[string]string
	secret map[string]bool
}

// Get returns the value of key, or "" when it has none.
func (s Settings) Get(key string) string { return s.values[key] }

// Has reports whether key has a value.
func (s Settings) Has(key string) bool {
	_, ok := s.values[key]
	return ok
}

// Int returns the value of an int setting, 0 when it has none.
func (s Settings) Int(key string) int64 {
	n, _ := strconv.ParseInt(s.values[key], 10, 64)
	return n
}

// Bool returns the value of a bool setting, false when it has none.
func (s Settings) Bool(key string) bool {
	b, _ := strconv.ParseBool(s.values[key])
	return b
}

// Duration returns the value of a duration setting, 0 when it has none.
func (s Settings) Duration(key string) time.Duration {
	d, _ := time.ParseDuration(s.values[key])
	return d
}

// Keys returns the keys that have a value, sorted.
func (s Settings) Keys() []string {
	keys := make([]string, 0, len(s.values))
	for k := range s.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// redacted is what a secret value prints as.
const redacted = "[redacted]"

func (s Settings) shown(key string) string {
	if s.secret[key] {
		return redacted
	}
	return s.values[key]
}

// String implements fmt.Stringer with secret values redacted.
func (s Settings) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range s.Keys() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(s.shown(k))
	}
	b.WriteByte('}')
	return b.String()
}

// GoString implements fmt.GoStringer with secret values redacted.
func (s Settings) GoString() string { return "plugin.Settings" + s.String() }

// LogValue implements slog.LogValuer: a group of the settings with secret
// values redacted.
func (s Settings) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(s.values))
	for _, k := range s.Keys() {
		attrs = append(attrs, slog.String(k, s.shown(k)))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON implements json.Marshaler with secret values redacted.
func (s Settings) MarshalJSON() ([]byte, error) {
	m := make(map[string]string, len(s.values))
	for k := range s.values {
		m[k] = s.shown(k)
	}
	return json.Marshal(m)
}

// ApplyMerchant returns the complete settings of one merchant of a service
// provider: the flow's raw settings with the merchant's own values in
// place, checked as Apply checks them. A merchant may only set settings
// declared PerMerchant; any other key is refused, named
// "merchants.<id>.<key>".
func (s Schema) ApplyMerchant(id string, raw, own map[string]string, env Environment) (Settings, error) {
	declared := map[string]SettingSpec{}
	for _, sp := range s {
		declared[sp.Key] = sp
	}
	var problems []SettingProblem
	merged := make(map[string]string, len(raw)+len(own))
	for k, v := range raw {
		merged[k] = v
	}
	for k, v := range own {
		if sp, ok := declared[k]; !ok || !sp.PerMerchant {
			problems = append(problems, SettingProblem{Key: "merchants." + id + "." + k, Message: "not a setting a merchant can have of its own"})
			continue
		}
		merged[k] = v
	}
	if len(problems) > 0 {
		sort.Slice(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
		return Settings{}, &SettingsError{Problems: problems}
	}
	out, err := s.Apply(merged, env)
	if err != nil {
		var se *SettingsError
		if errors.As(err, &se) {
			for i := range se.Problems {
				se.Problems[i].Key = "merchants." + id + "." + se.Problems[i].Key
			}
		}
		return Settings{}, err
	}
	return out, nil
}

// applyMerchants applies ApplyMerchant to every merchant of a Configure
// request.
func (s Schema) applyMerchants(raw map[string]string, merchants map[string]*flowv2.MerchantSettings, env Environment) (map[string]Settings, error) {
	if len(merchants) == 0 {
		return nil, nil
	}
	out := make(map[string]Settings, len(merchants))
	for id, m := range merchants {
		st, err := s.ApplyMerchant(id, raw, m.GetSettings(), env)
		if err != nil {
			return nil, err
		}
		out[id] = st
	}
	return out, nil
}
