package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// yamlFile is a parsed configuration file, kept to find the line of a key.
type yamlFile struct {
	path   string
	values map[string]any
	ast    *ast.File
}

// readYAML reads and parses path. A syntax error names the line and column
// where the parser stopped, which is where the file is wrong (the
// go.yaml.in parser reports the line where the enclosing block starts).
func readYAML(path string) (*yamlFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	f := &yamlFile{path: path, values: map[string]any{}}
	if f.ast, err = parser.ParseBytes(b, 0); err == nil {
		err = yaml.Unmarshal(b, &f.values)
	}
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			pos := ye.GetToken().Position
			return nil, fmt.Errorf("%s:%d:%d: not valid YAML: %s", path, pos.Line, pos.Column, ye.GetMessage())
		}
		return nil, fmt.Errorf("%s: not valid YAML: %w", path, err)
	}
	if f.values == nil {
		f.values = map[string]any{}
	}
	return f, nil
}

// line returns the line of key ("webhook.schedule[2]") in the file, or of
// its nearest parent there; 0 when the file does not set it.
func (f *yamlFile) line(key string) int {
	if f == nil || f.ast == nil || key == "" {
		return 0
	}
	for k := key; k != ""; {
		if p, err := yaml.PathString("$." + k); err == nil {
			if n, err := p.FilterFile(f.ast); err == nil && n != nil && n.GetToken() != nil {
				return n.GetToken().Position.Line
			}
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}
