package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Settings returns every setting of c by its key, as the file and the
// environment name them ("webhook.url", "webhook.schedule",
// "plugins.flows.wechat-jsapi.settings.app_id"): one entry per struct
// field and per map entry; a list is one setting. A setting at its zero
// value ("", 0, false, an empty list) is left out, so that a map entry
// written with only some of its fields (a flow given only settings) equals
// one that is absent but for those; a pointer set to a zero value (enabled:
// false) is kept. Two configurations differ exactly where their Settings
// differ.
func (c Config) Settings() map[string]any {
	out := map[string]any{}
	flatten(out, "", reflect.ValueOf(c), false)
	return out
}

func flatten(out map[string]any, prefix string, v reflect.Value, pointed bool) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			name := t.Field(i).Tag.Get("koanf")
			if name == "" || name == "-" || !t.Field(i).IsExported() {
				continue
			}
			flatten(out, prefix+name+".", v.Field(i), false)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			flatten(out, prefix+fmt.Sprint(k.Interface())+".", v.MapIndex(k), false)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			flatten(out, prefix, v.Elem(), true)
		}
	default:
		if !pointed && (v.IsZero() || (v.Kind() == reflect.Slice && v.Len() == 0)) {
			return
		}
		out[strings.TrimSuffix(prefix, ".")] = v.Interface()
	}
}

// Changed returns the keys whose settings differ between a and b (as
// Settings gives them), sorted.
func Changed(a, b map[string]any) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Hash returns a short hash of c that changes whenever any of its settings
// does, secrets included (they enter it only through a hash of their
// own), so that logs, metrics and `config check` can say which
// configuration is in force without showing any of it.
func (c Config) Hash() string { return HashSettings(c.Settings()) }

// HashSettings is Hash of settings as Settings returns them.
func HashSettings(settings map[string]any) string {
	doc := make(map[string]string, len(settings))
	for k, v := range settings {
		b, err := json.Marshal(v)
		if err != nil {
			b = fmt.Appendf(nil, "%#v", v)
		}
		sum := sha256.Sum256(b)
		doc[k] = hex.EncodeToString(sum[:])
	}
	b, _ := json.Marshal(doc) // sorted by key
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// SecretFiles returns the files c reads secrets from: every *_file key and
// the flows' settings_files, sorted, without duplicates.
func (c Config) SecretFiles() []string {
	var out []string
	for k, v := range c.Settings() {
		s, ok := v.(string)
		if ok && s != "" && (strings.HasSuffix(k, "_file") || strings.Contains(k, ".settings_files.")) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
