// Command fuzz finds every fuzz target of the module and fuzzes each for a
// fixed number of inputs.
//
//	go run ./internal/tools/fuzz [-execs N] [-list] [packages]
//
// Targets are found, not listed: every function FuzzXxx(*testing.F) in the
// test files that `go list` reports for the packages (./... by default), so
// a new target is fuzzed as soon as it is written. Their seed corpora also
// run as ordinary tests in every `go test`.
//
// Each target runs as `go test -fuzz=^Target$ -fuzztime=Nx`: a count of
// inputs, not a duration. A duration puts a deadline on the fuzzing
// coordinator's context, and the coordinator of Go 1.26 can report that
// deadline as a failure ("context deadline exceeded", with no crashing
// input) when the process is descheduled at the moment it expires — which
// a loaded machine makes likely (golang/go#75804, fixed in Go 1.27). With a
// count there is no deadline: a busy machine makes the stage slower, never
// red. Any failure, including one without a crashing input, fails the
// stage.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// target is one fuzz function of one package.
type target struct {
	Pkg, Dir, Name string
}

// pkg is the part of `go list -json` this command reads.
type pkg struct {
	ImportPath   string
	Dir          string
	TestGoFiles  []string
	XTestGoFiles []string
}

func main() {
	execs := flag.Int("execs", envInt("FUZZ_EXECS", 2000), "inputs to try per target (env FUZZ_EXECS)")
	list := flag.Bool("list", false, "only list the targets")
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	targets, err := findTargets(patterns)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fuzz: %v\n", err)
		os.Exit(2)
	}
	if len(targets) == 0 {
		fmt.Fprintln(os.Stderr, "fuzz: no fuzz targets found")
		os.Exit(2)
	}
	if *list {
		for _, t := range targets {
			fmt.Printf("%s %s\n", t.Pkg, t.Name)
		}
		return
	}
	var failed []string
	for _, t := range targets {
		fmt.Printf("=== fuzz %s %s (%d inputs)\n", t.Pkg, t.Name, *execs)
		if err := run(t, *execs, os.Stdout); err != nil {
			failed = append(failed, t.Pkg+" "+t.Name)
			fmt.Printf("--- FAIL fuzz %s %s: %v\n", t.Pkg, t.Name, err)
		}
	}
	fmt.Printf("fuzz: %d targets, %d failed\n", len(targets), len(failed))
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Printf("  failed: %s\n", f)
		}
		os.Exit(1)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// findTargets lists the packages matching patterns and parses their test
// files (as go list selects them, build constraints applied) for fuzz
// functions.
func findTargets(patterns []string) ([]target, error) {
	out, err := exec.Command("go", append([]string{"list", "-json=ImportPath,Dir,TestGoFiles,XTestGoFiles"}, patterns...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("go list: %v\n%s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("go list: %w", err)
	}
	var targets []target
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decode go list: %w", err)
		}
		for _, f := range append(p.TestGoFiles, p.XTestGoFiles...) {
			names, err := fuzzFuncs(filepath.Join(p.Dir, f))
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				targets = append(targets, target{Pkg: p.ImportPath, Dir: p.Dir, Name: n})
			}
		}
	}
	sort.Slice(targets, func(i, j int) bool {
		if targets[i].Pkg != targets[j].Pkg {
			return targets[i].Pkg < targets[j].Pkg
		}
		return targets[i].Name < targets[j].Name
	})
	return targets, nil
}

// fuzzFuncs returns the names of the functions FuzzXxx(f *testing.F) in
// the file, the form `go test` accepts as a fuzz target.
func fuzzFuncs(path string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var names []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !isFuzzName(fn.Name.Name) {
			continue
		}
		params := fn.Type.Params.List
		if len(params) != 1 || len(params[0].Names) > 1 {
			continue
		}
		star, ok := params[0].Type.(*ast.StarExpr)
		if !ok {
			continue
		}
		if sel, ok := star.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "F" {
			names = append(names, fn.Name.Name)
		}
	}
	return names, nil
}

// isFuzzName reports whether name is Fuzz followed by nothing or by a
// character that is not a lower-case letter, as the testing package
// requires.
func isFuzzName(name string) bool {
	rest, ok := strings.CutPrefix(name, "Fuzz")
	if !ok {
		return false
	}
	return rest == "" || !(rest[0] >= 'a' && rest[0] <= 'z')
}

// run fuzzes one target for n inputs, minimizing a new input or a crasher
// for at most n/10 tries.
func run(t target, n int, w io.Writer) error {
	minimize := max(n/10, 1)
	cmd := exec.Command("go", "test", "-run=^$", "-fuzz=^"+t.Name+"$",
		"-fuzztime="+strconv.Itoa(n)+"x", "-fuzzminimizetime="+strconv.Itoa(minimize)+"x", "-timeout=10m", ".")
	cmd.Dir = t.Dir
	cmd.Stdout, cmd.Stderr = w, w
	return cmd.Run()
}
