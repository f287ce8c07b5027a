package main

import (
	"bytes"
	"context"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestSmokeProducesEveryRow builds the binaries, runs the seconds-long
// version of the load program against them and requires every row of the
// table, with a figure in it. It asserts no timing: the numbers of a smoke
// run mean nothing.
func TestSmokeProducesEveryRow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every binary; skipped in -short mode")
	}
	bin := buildBinaries(t)
	pg := os.Getenv("PAYSIDECAR_TEST_POSTGRES_DSN")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	if conn, err := pgx.Connect(context.Background(), pg); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		t.Logf("PostgreSQL unreachable, its row is left unmeasured: %v", err)
		pg = ""
	} else {
		_ = conn.Close(context.Background())
	}

	var out bytes.Buffer
	if err := run(t.Context(), options{bin: bin, smoke: true, repeats: 1, postgres: pg}, &out); err != nil {
		t.Fatalf("the load program failed: %v\n%s", err, out.String())
	}
	report := out.String()
	for _, row := range rows {
		line := lineStarting(report, "| "+row+" |")
		switch {
		case line == "":
			t.Errorf("no row %q in the report:\n%s", row, report)
		case row == rowIngestPG && pg == "":
		case strings.Contains(line, "not measured") || !strings.ContainsAny(line, "0123456789"):
			t.Errorf("row %q has no figure: %s", row, line)
		}
	}
	if !strings.Contains(report, "load average") {
		t.Errorf("the report does not record the load average:\n%s", report)
	}
}

// lineStarting returns the first line of s that starts with prefix.
func lineStarting(s, prefix string) string {
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// buildBinaries builds paysidecar and every flow plugin as the Makefile
// does, into a temporary directory.
func buildBinaries(t *testing.T) string {
	t.Helper()
	root := filepath.Join("..", "..", "..")
	dir := t.TempDir()
	builds := [][2]string{{"paysidecar", "./sidecar/cmd/paysidecar"}}
	entries, err := os.ReadDir(filepath.Join(root, "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if pkg, err := build.ImportDir(filepath.Join(root, "plugins", e.Name()), 0); e.IsDir() && err == nil && pkg.Name == "main" {
			builds = append(builds, [2]string{filepath.Join("plugins", e.Name()), "./plugins/" + e.Name()})
		}
	}
	for _, b := range builds {
		args, env := []string{"build"}, os.Environ()
		if b[0] != "paysidecar" {
			// Plugins are built small and static, as the Makefile builds
			// them.
			args, env = append(args, "-tags=grpcnotrace"), append(env, "CGO_ENABLED=0")
		}
		cmd := exec.Command("go", append(args, "-o", filepath.Join(dir, b[0]), b[1])...)
		cmd.Dir = root
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b[1], err, out)
		}
	}
	return dir
}
