package app

import (
	"errors"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
)

// repoRoot is the repository root relative to this package's directory.
var repoRoot = filepath.Join("..", "..")

func executable(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFlowConfigs(t *testing.T) {
	dir := t.TempDir()
	executable(t, dir, "acme-pay", 0o755)
	executable(t, dir, "other-pay", 0o755)
	executable(t, dir, "off-pay", 0o755)
	executable(t, dir, "SHA256SUMS", 0o644)
	executable(t, dir, "not_a_flow", 0o755)
	elsewhere := executable(t, t.TempDir(), "moved", 0o755)
	off := false
	p := config.PluginsConfig{Dir: dir, Flows: map[string]config.FlowConfig{
		"acme-pay":  {Settings: map[string]string{"region": "cn"}, SHA256: strings.Repeat("ab", 32), Keys: []string{"merchant"}},
		"off-pay":   {Enabled: &off},
		"other-pay": {Path: elsewhere},
		"far-pay":   {Path: elsewhere},
	}}
	got, skipped, err := flowConfigs(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []pluginhost.PluginConfig{
		{Name: "acme-pay", Path: filepath.Join(dir, "acme-pay"), SHA256: strings.Repeat("ab", 32), Settings: map[string]string{"region": "cn"}, Keys: []string{"merchant"}},
		{Name: "far-pay", Path: elsewhere},
		{Name: "other-pay", Path: elsewhere},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flowConfigs =\n %+v\nwant\n %+v", got, want)
	}
	if !reflect.DeepEqual(skipped, []string{"not_a_flow"}) {
		t.Errorf("skipped = %v", skipped)
	}

	t.Run("a configured flow without a binary", func(t *testing.T) {
		_, _, err := flowConfigs(config.PluginsConfig{Dir: dir, Flows: map[string]config.FlowConfig{"ghost-pay": {}}})
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Problems[0].Key != "plugins.flows.ghost-pay" || !strings.Contains(cerr.Problems[0].Message, "no binary ghost-pay in plugins.dir") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("nothing to run", func(t *testing.T) {
		_, _, err := flowConfigs(config.PluginsConfig{Dir: t.TempDir()})
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Problems[0].Key != "plugins" {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("no directory", func(t *testing.T) {
		if _, _, err := flowConfigs(config.PluginsConfig{Dir: filepath.Join(dir, "nope")}); err == nil || !strings.Contains(err.Error(), "plugins.dir") {
			t.Errorf("error = %v", err)
		}
	})
}

// shippedFlows returns the names of the flows under plugins/: every
// directory that holds a main package.
func shippedFlows(t *testing.T) []string {
	t.Helper()
	dirs, err := os.ReadDir(filepath.Join(repoRoot, "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		if pkg, err := build.ImportDir(filepath.Join(repoRoot, "plugins", d.Name()), 0); err == nil && pkg.Name == "main" {
			names = append(names, d.Name())
		}
	}
	if len(names) < 3 {
		t.Fatalf("found the flows %v under plugins/", names)
	}
	return names
}

// TestHostNamesNoFlow checks that the host knows no flow by name: no
// string in the host's code (sidecar/, test harnesses and tests aside)
// names a flow that ships under plugins/, and neither the Makefile nor the
// Dockerfile lists one, so that adding a flow is adding a directory.
func TestHostNamesNoFlow(t *testing.T) {
	flows := shippedFlows(t)
	names := func(s string) []string {
		var out []string
		for _, f := range flows {
			if strings.Contains(s, f) {
				out = append(out, f)
			}
		}
		return out
	}
	root := filepath.Join(repoRoot, "sidecar")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasSuffix(d.Name(), "test") || d.Name() == "e2e" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.BasicLit:
				if x.Kind == token.STRING {
					if v, err := strconv.Unquote(x.Value); err == nil && len(names(v)) > 0 {
						t.Errorf("%s: the string %s names the flows %v", path, x.Value, names(v))
					}
				}
			case *ast.SelectorExpr:
				if strings.HasPrefix(x.Sel.Name, "FlowWeChat") || strings.HasPrefix(x.Sel.Name, "FlowAlipay") {
					t.Errorf("%s: %s names a flow", path, x.Sel.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"Makefile", "Dockerfile"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := names(string(b)); len(got) > 0 {
			t.Errorf("%s names the flows %v", file, got)
		}
	}
}
