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
// its nearest parent there; 0 when the file does not set it. A mapping key
// is found at its own line, not at the line where its value starts (a
// block value begins on the next line).
func (f *yamlFile) line(key string) int {
	if f == nil || f.ast == nil || key == "" {
		return 0
	}
	for k := key; k != ""; {
		if n := f.keyLine(k); n > 0 {
			return n
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// keyLine returns the line of one key path, or 0. A path ending in a
// mapping key ("webhook.url") is the line of that key in its parent
// mapping; a path ending in a list index is the line of the element.
func (f *yamlFile) keyLine(k string) int {
	i := strings.LastIndexAny(k, ".[")
	if i >= 0 && k[i] == '[' {
		return f.nodeLine("$." + k)
	}
	parent, name := "", k
	if i >= 0 {
		parent, name = k[:i], k[i+1:]
	}
	var node ast.Node
	if parent == "" {
		if len(f.ast.Docs) == 0 {
			return 0
		}
		node = f.ast.Docs[0].Body
	} else {
		p, err := pathString("$." + parent)
		if err != nil {
			return 0
		}
		if node, err = p.FilterFile(f.ast); err != nil {
			return 0
		}
	}
	var values []*ast.MappingValueNode
	switch m := node.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	}
	for _, v := range values {
		if v.Key != nil && v.Key.GetToken() != nil && v.Key.GetToken().Value == name {
			return v.Key.GetToken().Position.Line
		}
	}
	return 0
}

// nodeLine returns the line where the node at a YAML path starts, or 0.
func (f *yamlFile) nodeLine(path string) int {
	p, err := pathString(path)
	if err != nil {
		return 0
	}
	n, err := p.FilterFile(f.ast)
	if err != nil || n == nil || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

// pathString parses a YAML path. A key comes from the file or the
// environment and may be any text, on which the YAML library's path parser
// can panic (an unclosed index such as "00[0"): that is an error here.
func pathString(s string) (p *yaml.Path, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("not a YAML path: %q", s)
		}
	}()
	return yaml.PathString(s)
}
