package deploytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/paysidecar/paysidecar/internal/testenv"
)

// repoRoot is the repository root relative to this package's directory.
var repoRoot = filepath.Join("..", "..")

var deployDir = filepath.Join(repoRoot, "deploy")

// document is one parsed YAML document or JSON file under deploy/.
type document struct {
	File string
	Data any
	Raw  []byte // the document's own YAML, or the JSON file
}

// deployDocuments parses every YAML and JSON file under deploy/, each YAML
// document separately.
func deployDocuments(t *testing.T) []document {
	t.Helper()
	var docs []document
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch filepath.Ext(path) {
		case ".json":
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Errorf("%s: %v", path, err)
				return nil
			}
			docs = append(docs, document{File: path, Data: v, Raw: raw})
		case ".yaml", ".yml":
			dec := yaml.NewDecoder(bytes.NewReader(raw))
			for {
				var node yaml.Node
				if err := dec.Decode(&node); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Errorf("%s: %v", path, err)
					return nil
				}
				var v any
				if err := node.Decode(&v); err != nil {
					t.Errorf("%s: %v", path, err)
					return nil
				}
				own, err := yaml.Marshal(&node)
				if err != nil {
					t.Errorf("%s: %v", path, err)
					return nil
				}
				docs = append(docs, document{File: path, Data: v, Raw: own})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk deploy/: %v", err)
	}
	if len(docs) < 8 {
		t.Fatalf("found only %d documents under deploy/", len(docs))
	}
	return docs
}

// documentsIn returns the documents of one file.
func documentsIn(t *testing.T, rel string) []document {
	t.Helper()
	var out []document
	for _, d := range deployDocuments(t) {
		if d.File == filepath.Join(deployDir, rel) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no document in deploy/%s", rel)
	}
	return out
}

var metricRe = regexp.MustCompile(`\bpaysidecar_[a-z0-9_]+`)

// referencedMetrics returns the paysidecar_ metric names in every PromQL
// expression ("expr") and test series ("series") under deploy/, with the
// files that use them.
func referencedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var walk func(file string, v any)
	walk = func(file string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && (k == "expr" || k == "series") {
					for _, m := range metricRe.FindAllString(s, -1) {
						if !slices.Contains(out[m], file) {
							out[m] = append(out[m], file)
						}
					}
				}
				walk(file, e)
			}
		case []any:
			for _, e := range v {
				walk(file, e)
			}
		}
	}
	for _, d := range deployDocuments(t) {
		walk(d.File, d.Data)
	}
	return out
}

// goSources returns the non-test Go sources of the repository outside
// deploy/ and examples/, where metrics are registered.
func goSources(t *testing.T) []byte {
	t.Helper()
	var all bytes.Buffer
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "deploy", "examples", "bin", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		all.Write(b)
		all.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatalf("walk the repository: %v", err)
	}
	return all.Bytes()
}

// registered reports whether the Go sources declare the metric name, or,
// for a histogram's _bucket, _sum and _count series, its base name.
func registered(src []byte, name string) bool {
	if bytes.Contains(src, []byte(`"`+name+`"`)) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && bytes.Contains(src, []byte(`"`+base+`"`)) {
			return true
		}
	}
	return false
}

func TestEveryReferencedMetricIsRegistered(t *testing.T) {
	refs := referencedMetrics(t)
	if len(refs) < 10 {
		t.Fatalf("found only %d metric names in deploy/; is the extraction broken?", len(refs))
	}
	src := goSources(t)
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if !registered(src, name) {
			rel := make([]string, 0, len(refs[name]))
			for _, f := range refs[name] {
				r, _ := filepath.Rel(repoRoot, f)
				rel = append(rel, r)
			}
			t.Errorf("%s is used in %s but no Go code registers it", name, strings.Join(rel, ", "))
		}
	}
}

func TestRegisteredDetectsMissingNames(t *testing.T) {
	src := []byte(`Name: "paysidecar_delivery_latency_seconds", Name: "paysidecar_outbox_events"`)
	tests := []struct {
		name string
		want bool
	}{
		{"paysidecar_delivery_latency_seconds", true},
		{"paysidecar_delivery_latency_seconds_bucket", true},
		{"paysidecar_delivery_latency_seconds_count", true},
		{"paysidecar_outbox_events", true},
		{"paysidecar_outbox", false},
		{"paysidecar_outbox_events_total", false},
		{"paysidecar_no_such_metric_bucket", false},
	}
	for _, tt := range tests {
		if got := registered(src, tt.name); got != tt.want {
			t.Errorf("registered(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// alertRules is the shape of a Prometheus rule file.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRules(t *testing.T) {
	var rules alertRules
	doc := documentsIn(t, filepath.Join("prometheus", "alerts.yaml"))[0]
	if err := yaml.Unmarshal(doc.Raw, &rules); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	n := 0
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			n++
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name", g.Name)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if !strings.HasPrefix(r.Alert, "Paysidecar") {
				t.Errorf("alert %s should be named Paysidecar…", r.Alert)
			}
			if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs a summary and a description", r.Alert)
			}
			if !metricRe.MatchString(r.Expr) {
				t.Errorf("alert %s does not use a paysidecar metric: %s", r.Alert, r.Expr)
			}
			if !balanced(r.Expr) {
				t.Errorf("alert %s: unbalanced brackets in %s", r.Alert, r.Expr)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d alert rules", n)
	}
}

// balanced reports whether (), [] and {} nest properly outside quotes.
func balanced(s string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inQuote := false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !inQuote
}

// TestAlertRulesWithPromtool runs promtool's checks and the rule unit tests
// in deploy/prometheus/alerts.test.yaml where promtool is installed.
func TestAlertRulesWithPromtool(t *testing.T) {
	promtool := testenv.LookPath(t, "Debian package prometheus; checks the alerting rules", "promtool")
	dir := filepath.Join(deployDir, "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts.test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// dashboard is the part of a Grafana dashboard the test checks.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func TestDashboard(t *testing.T) {
	doc := documentsIn(t, filepath.Join("grafana", "paysidecar.json"))[0]
	var d dashboard
	if err := json.Unmarshal(doc.Raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	hasDS := false
	for _, v := range d.Templating.List {
		hasDS = hasDS || (v.Name == "datasource" && v.Type == "datasource")
	}
	if !hasDS {
		t.Error("the dashboard needs a datasource variable so it can be imported anywhere")
	}
	ids := map[int]bool{}
	taken := map[cell]string{}
	graphs := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q has a bad gridPos %+v", p.Title, p.GridPos)
		}
		if other := place(taken, p); other != "" {
			t.Errorf("panels %q and %q overlap", other, p.Title)
		}
		if p.Type == "row" {
			continue
		}
		graphs++
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if !metricRe.MatchString(q.Expr) || !balanced(q.Expr) {
				t.Errorf("panel %q query %s: no paysidecar metric or unbalanced brackets: %s", p.Title, q.RefID, q.Expr)
			}
		}
	}
	if graphs < 10 {
		t.Errorf("only %d panels with queries", graphs)
	}
}

// cell is one unit of Grafana's 24-column grid.
type cell struct{ x, y int }

// place marks the cells p covers as taken and returns the title of a panel
// already covering one of them, or "".
func place(taken map[cell]string, p panel) string {
	for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
		for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
			if other, ok := taken[cell{x, y}]; ok {
				return other
			}
			taken[cell{x, y}] = p.Title
		}
	}
	return ""
}
