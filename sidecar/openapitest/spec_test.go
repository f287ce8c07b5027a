package openapitest

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/paysidecar/paysidecar/sdk/client"
)

// repoRoot is the repository root relative to this package's directory,
// where go test runs.
var repoRoot = filepath.Join("..", "..")

// loadSpec parses sdk/openapi.yaml into plain maps, with YAML aliases
// resolved.
func loadSpec(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "sdk", "openapi.yaml"))
	if err != nil {
		t.Fatalf("read the specification: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse sdk/openapi.yaml: %v", err)
	}
	return doc
}

// dig walks a path of map keys and fails the test when one is missing.
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for i, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s is not a mapping", strings.Join(keys[:i], "."))
		}
		v, ok = m[k]
		if !ok {
			t.Fatalf("%s is missing", strings.Join(keys[:i+1], "."))
		}
	}
	return v
}

func asMap(t *testing.T, v any, what string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is not a mapping but %T", what, v)
	}
	return m
}

func stringList(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, e := range list {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// route is one pattern registered with mux.HandleFunc.
type route struct {
	Method, Path string
	// Idempotent is true when the handler is wrapped with s.idempotent.
	Idempotent bool
}

var handleFuncRe = regexp.MustCompile(`mux\.HandleFunc\("([A-Z]+) (/[^"]*)",\s*(s\.idempotent)?`)

// methodWrapperRe matches the events handler's style, which checks the
// method in a wrapper: mux.HandleFunc("/v1/events", s.method(http.MethodGet, …)).
var methodWrapperRe = regexp.MustCompile(`mux\.HandleFunc\("(/[^"]*)",\s*s\.method\(http\.Method([A-Za-z]+),`)

// wildcardRe matches a Go ServeMux wildcard such as {path...}.
var wildcardRe = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)

// routesIn returns the method-qualified routes registered in a Go file,
// with Go's {name...} wildcards written the OpenAPI way, {name}.
func routesIn(t *testing.T, file string) []route {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	var out []route
	for _, m := range handleFuncRe.FindAllStringSubmatch(string(src), -1) {
		out = append(out, route{Method: m[1], Path: wildcardRe.ReplaceAllString(m[2], "{$1}"), Idempotent: m[3] != ""})
	}
	for _, m := range methodWrapperRe.FindAllStringSubmatch(string(src), -1) {
		out = append(out, route{Method: strings.ToUpper(m[2]), Path: wildcardRe.ReplaceAllString(m[1], "{$1}")})
	}
	return out
}

// apiRoutes returns the routes of sidecar/api/server.go and of the events
// handler mounted under /v1/events.
func apiRoutes(t *testing.T) (api, eventRoutes []route) {
	t.Helper()
	for _, f := range apiFiles(t) {
		api = append(api, routesIn(t, f)...)
	}
	if len(api) < 10 {
		t.Fatalf("found only %d routes in sidecar/api/server.go; has the registration style changed?", len(api))
	}
	files, _ := filepath.Glob(filepath.Join(repoRoot, "sidecar", "events", "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		for _, r := range routesIn(t, f) {
			if strings.HasPrefix(r.Path, "/v1/events") {
				eventRoutes = append(eventRoutes, r)
			}
		}
	}
	if len(eventRoutes) < 4 {
		t.Fatalf("found only %d /v1/events routes in sidecar/events; has the registration style changed?", len(eventRoutes))
	}
	// The statements and reconciliation handler, mounted under
	// /v1/statements/ and /v1/reconciliations.
	books := routesIn(t, booksHandler)
	if len(books) < 5 {
		t.Fatalf("found only %d routes in %s; has the registration style changed?", len(books), booksHandler)
	}
	return append(api, books...), eventRoutes
}

// booksHandler registers the statements and reconciliation routes, which
// sidecar/api mounts.
var booksHandler = filepath.Join(repoRoot, "sidecar", "reconcile", "handler.go")

func operation(spec map[string]any, path, method string) (map[string]any, bool) {
	paths, _ := spec["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, ok := item[strings.ToLower(method)].(map[string]any)
	return op, ok
}

func TestEveryRouteIsDocumented(t *testing.T) {
	spec := loadSpec(t)
	api, eventRoutes := apiRoutes(t)
	for _, r := range append(slices.Clone(api), eventRoutes...) {
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			if _, ok := operation(spec, r.Path, r.Method); !ok {
				t.Errorf("route %s %s is registered but not in sdk/openapi.yaml", r.Method, r.Path)
			}
		})
	}
}

func TestEveryDocumentedOperationExists(t *testing.T) {
	spec := loadSpec(t)
	api, eventRoutes := apiRoutes(t)
	registered := map[string]bool{}
	for _, r := range append(slices.Clone(api), eventRoutes...) {
		registered[r.Method+" "+r.Path] = true
	}
	methods := []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}
	for path, item := range asMap(t, spec["paths"], "paths") {
		for _, m := range methods {
			if _, ok := asMap(t, item, path)[m]; ok && !registered[strings.ToUpper(m)+" "+path] {
				t.Errorf("sdk/openapi.yaml documents %s %s, which the server does not register", strings.ToUpper(m), path)
			}
		}
	}
}

func TestIdempotentRoutesDocumentTheKey(t *testing.T) {
	spec := loadSpec(t)
	api, _ := apiRoutes(t)
	n := 0
	for _, r := range api {
		if !r.Idempotent {
			continue
		}
		n++
		op, ok := operation(spec, r.Path, r.Method)
		if !ok {
			continue // reported by TestEveryRouteIsDocumented
		}
		hasKey := false
		for _, p := range op["parameters"].([]any) {
			if ref, _ := p.(map[string]any)["$ref"].(string); ref == "#/components/parameters/IdempotencyKey" {
				hasKey = true
			}
		}
		if !hasKey {
			t.Errorf("%s %s takes Idempotency-Key but does not document it", r.Method, r.Path)
		}
		responses := asMap(t, op["responses"], r.Path+" responses")
		for _, status := range []string{"409", "422"} {
			if _, ok := responses[status]; !ok {
				t.Errorf("%s %s takes Idempotency-Key but does not document its %s answer", r.Method, r.Path, status)
			}
		}
	}
	if n == 0 {
		t.Fatal("no route in sidecar/api/server.go is wrapped with s.idempotent; has the registration style changed?")
	}
	desc := dig(t, spec, "components", "parameters", "IdempotencyKey", "description").(string)
	for _, want := range []string{"24 hours", "Idempotent-Replayed: true", "422 idempotency_key_mismatch", "409 idempotency_key_in_use"} {
		if !strings.Contains(strings.Join(strings.Fields(desc), " "), want) {
			t.Errorf("the Idempotency-Key description does not mention %q", want)
		}
	}
}

// apiFiles are the non-test Go files of sidecar/api, server.go first.
func apiFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "sidecar", "api", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{filepath.Join(repoRoot, "sidecar", "api", "server.go")}
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") && filepath.Base(f) != "server.go" {
			out = append(out, f)
		}
	}
	return out
}

// errorCodeFiles declare the app API's error codes: the API's own
// (errors.go, and the files of the API's parts that have codes of their
// own) and the events handler's mounted under /v1/events.
var errorCodeFiles = []string{
	filepath.Join(repoRoot, "sidecar", "api", "errors.go"),
	filepath.Join(repoRoot, "sidecar", "api", "checkouts.go"),
	filepath.Join(repoRoot, "sidecar", "api", "merchants.go"),
	filepath.Join(repoRoot, "sidecar", "events", "events.go"),
}

// codeConstants returns the values of the Code… constants of the app
// API's own files by name.
func codeConstants(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range errorCodeFiles {
		if filepath.Base(filepath.Dir(f)) != "api" {
			continue
		}
		for name, v := range stringConstants(t, f, "Code") {
			out[name] = v
		}
	}
	return out
}

// allCodeValues returns every error code value the app API can answer,
// with the constant that declares it.
func allCodeValues(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range errorCodeFiles {
		for name, v := range stringConstants(t, f, "Code") {
			out[v] = filepath.Base(filepath.Dir(f)) + "." + name
		}
	}
	return out
}

// stringConstants returns the string constants of a Go file whose names
// start with prefix.
func stringConstants(t *testing.T, file, prefix string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, prefix) || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatalf("%s: %v", name.Name, err)
					}
					out[name.Name] = v
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s… string constants in %s", prefix, file)
	}
	return out
}

func TestEveryErrorCodeIsDocumented(t *testing.T) {
	spec := loadSpec(t)
	consts := allCodeValues(t)
	enum := stringList(dig(t, spec, "components", "schemas", "ErrorCode", "enum"))
	table := asMap(t, dig(t, spec, "components", "x-error-codes"), "x-error-codes")
	raw, _ := os.ReadFile(filepath.Join(repoRoot, "sdk", "openapi.yaml"))
	values := map[string]bool{}
	for v, name := range consts {
		values[v] = true
		if !slices.Contains(enum, v) {
			t.Errorf("%s = %q is not in components.schemas.ErrorCode.enum", name, v)
		}
		if _, ok := table[v]; !ok {
			t.Errorf("%s = %q has no entry in components.x-error-codes", name, v)
		}
		if !strings.Contains(string(raw), v) {
			t.Errorf("%s = %q does not appear in sdk/openapi.yaml", name, v)
		}
	}
	for _, v := range enum {
		if !values[v] {
			t.Errorf("ErrorCode.enum lists %q, which neither sidecar/api nor sidecar/events defines", v)
		}
	}
	for v, entry := range table {
		if !values[v] {
			t.Errorf("x-error-codes lists %q, which neither sidecar/api nor sidecar/events defines", v)
		}
		e := asMap(t, entry, "x-error-codes."+v)
		if len(stringList(e["status"])) == 0 || e["description"] == nil {
			t.Errorf("x-error-codes.%s needs a status list and a description", v)
		}
	}
}

// httpStatuses resolves the net/http status constant names the API uses.
var httpStatuses = map[string]int{
	"StatusOK": http.StatusOK, "StatusCreated": http.StatusCreated, "StatusAccepted": http.StatusAccepted,
	"StatusBadRequest": http.StatusBadRequest, "StatusUnauthorized": http.StatusUnauthorized,
	"StatusForbidden": http.StatusForbidden, "StatusNotFound": http.StatusNotFound,
	"StatusMethodNotAllowed": http.StatusMethodNotAllowed, "StatusConflict": http.StatusConflict,
	"StatusGone": http.StatusGone, "StatusRequestEntityTooLarge": http.StatusRequestEntityTooLarge,
	"StatusUnsupportedMediaType": http.StatusUnsupportedMediaType, "StatusUnprocessableEntity": http.StatusUnprocessableEntity,
	"StatusTooManyRequests": http.StatusTooManyRequests, "StatusInternalServerError": http.StatusInternalServerError,
	"StatusNotImplemented": http.StatusNotImplemented, "StatusBadGateway": http.StatusBadGateway,
	"StatusServiceUnavailable": http.StatusServiceUnavailable, "StatusGatewayTimeout": http.StatusGatewayTimeout,
}

// codeStatus is an error code answered with an HTTP status somewhere in
// the API's source.
type codeStatus struct {
	Code   string
	Status int
	Where  string
}

// answeredStatuses finds, in the non-test sources of sidecar/api and of
// the statements and reconciliation handler, every error built with
// errorf(http.StatusX, CodeY, …), badRequest(CodeY, …) (400) or
// &Error{Status: http.StatusX, Code: CodeY} (api.Error and api.CodeY
// outside sidecar/api).
func answeredStatuses(t *testing.T, consts map[string]string) []codeStatus {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "sidecar", "api", "*.go"))
	files = append(files, booksHandler)
	fset := token.NewFileSet()
	var out []codeStatus
	status := func(e ast.Expr) (int, bool) {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return 0, false
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "http" {
			return 0, false
		}
		s, ok := httpStatuses[sel.Sel.Name]
		if !ok {
			t.Errorf("%s: http.%s is not in this test's httpStatuses table; add it", fset.Position(sel.Pos()), sel.Sel.Name)
		}
		return s, ok
	}
	code := func(e ast.Expr) (string, bool) {
		if sel, ok := e.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "api" {
				e = sel.Sel
			}
		}
		id, ok := e.(*ast.Ident)
		if !ok {
			return "", false
		}
		v, ok := consts[id.Name]
		return v, ok
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", file, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				fn, ok := n.Fun.(*ast.Ident)
				if !ok {
					return true
				}
				switch {
				case fn.Name == "errorf" && len(n.Args) >= 2:
					s, ok1 := status(n.Args[0])
					c, ok2 := code(n.Args[1])
					if ok1 && ok2 {
						out = append(out, codeStatus{c, s, fset.Position(n.Pos()).String()})
					}
				case fn.Name == "badRequest" && len(n.Args) >= 1:
					if c, ok := code(n.Args[0]); ok {
						out = append(out, codeStatus{c, http.StatusBadRequest, fset.Position(n.Pos()).String()})
					}
				}
			case *ast.CompositeLit:
				typ := n.Type
				if sel, ok := typ.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "api" {
						typ = sel.Sel
					}
				}
				if id, ok := typ.(*ast.Ident); !ok || id.Name != "Error" {
					return true
				}
				var s int
				var c string
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch key, _ := kv.Key.(*ast.Ident); {
					case key != nil && key.Name == "Status":
						s, _ = status(kv.Value)
					case key != nil && key.Name == "Code":
						c, _ = code(kv.Value)
					}
				}
				if s != 0 && c != "" {
					out = append(out, codeStatus{c, s, fset.Position(n.Pos()).String()})
				}
			}
			return true
		})
	}
	return out
}

func TestErrorStatusesMatchTheServer(t *testing.T) {
	spec := loadSpec(t)
	table := asMap(t, dig(t, spec, "components", "x-error-codes"), "x-error-codes")
	found := answeredStatuses(t, codeConstants(t))
	if len(found) < 20 {
		t.Fatalf("found only %d error constructions in sidecar/api; has the error style changed?", len(found))
	}
	for _, cs := range found {
		entry, ok := table[cs.Code].(map[string]any)
		if !ok {
			continue // reported by TestEveryErrorCodeIsDocumented
		}
		if !slices.Contains(stringList(entry["status"]), strconv.Itoa(cs.Status)) {
			t.Errorf("%s answers %s with HTTP %d, but x-error-codes.%s.status is %v", cs.Where, cs.Code, cs.Status, cs.Code, entry["status"])
		}
	}
}

// jsonFields returns the JSON names of a struct type's fields and those
// that are always present (no omitempty).
func jsonFields(typ reflect.Type) (all, required []string) {
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		if !strings.Contains(","+opts+",", ",omitempty,") && !strings.Contains(","+opts+",", ",omitzero,") {
			required = append(required, name)
		}
	}
	sort.Strings(all)
	sort.Strings(required)
	return all, required
}

func TestSchemasMatchTheGoTypes(t *testing.T) {
	spec := loadSpec(t)
	schemas := asMap(t, dig(t, spec, "components", "schemas"), "components.schemas")
	tests := []struct {
		schema string
		value  any
	}{
		{"Buyer", client.Buyer{}},
		{"CreatePaymentRequest", client.CreatePaymentRequest{}},
		{"Payment", client.Payment{}},
		{"CreateRefundRequest", client.CreateRefundRequest{}},
		{"Refund", client.Refund{}},
		{"Event", client.Event{}},
		{"EventData", client.EventData{}},
		{"UpstreamNotification", client.UpstreamNotification{}},
		{"ErrorBody", client.ErrorBody{}},
		{"ErrorDetail", client.ErrorDetail{}},
		{"EventPage", client.EventPage{}},
		{"EventRecord", client.EventRecord{}},
		{"ReplayResult", client.ReplayResult{}},
		{"StatementFile", client.StatementFile{}},
		{"StatementRowError", client.StatementRowError{}},
		{"TradeRow", client.TradeRow{}},
		{"SettleRow", client.SettleRow{}},
		{"SplitRow", client.SplitRow{}},
		{"WithdrawalRow", client.WithdrawalRow{}},
		{"StatementPage", client.StatementPage{}},
		{"ReconciliationSettlement", client.ReconciliationSettlement{}},
		{"ReconciliationDifference", client.ReconciliationDifference{}},
		{"ReconciliationTotals", client.ReconciliationTotals{}},
		{"Reconciliation", client.Reconciliation{}},
		{"StartReconciliationRequest", client.StartReconciliationRequest{}},
		{"ReconciliationList", client.ReconciliationList{}},
		{"ReconciliationPage", client.ReconciliationPage{}},
		{"CreateCheckoutRequest", client.CreateCheckoutRequest{}},
		{"Checkout", client.Checkout{}},
		{"CheckoutLinks", client.CheckoutLinks{}},
		{"AppLaunch", client.AppLaunch{}},
		{"PayCheckoutRequest", client.PayCheckoutRequest{}},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			s := asMap(t, schemas[tt.schema], tt.schema)
			var props []string
			for k := range asMap(t, s["properties"], tt.schema+".properties") {
				props = append(props, k)
			}
			sort.Strings(props)
			required := stringList(s["required"])
			sort.Strings(required)
			wantAll, wantRequired := jsonFields(reflect.TypeOf(tt.value))
			if !slices.Equal(props, wantAll) {
				t.Errorf("properties = %v, the Go type has %v", props, wantAll)
			}
			if !slices.Equal(required, wantRequired) {
				t.Errorf("required = %v, the Go type always sends %v", required, wantRequired)
			}
		})
	}
}

func TestEnumsMatchTheGoConstants(t *testing.T) {
	spec := loadSpec(t)
	types := filepath.Join(repoRoot, "sdk", "client", "types.go")
	values := func(prefix string) []string {
		var out []string
		for _, v := range stringConstants(t, types, prefix) {
			out = append(out, v)
		}
		sort.Strings(out)
		return out
	}
	sorted := func(v any) []string {
		s := stringList(v)
		sort.Strings(s)
		return s
	}
	webhooks := asMap(t, spec["webhooks"], "webhooks")
	var webhookNames []string
	for name := range webhooks {
		webhookNames = append(webhookNames, name)
	}
	sort.Strings(webhookNames)
	tests := []struct {
		name      string
		got, want []string
	}{
		{"PaymentStatus.enum", sorted(dig(t, spec, "components", "schemas", "PaymentStatus", "enum")), values("Status")},
		{"Event.type.enum", sorted(dig(t, spec, "components", "schemas", "Event", "properties", "type", "enum")), values("Event")},
		{"webhooks", webhookNames, values("Event")},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s = %v, sdk/client/types.go defines %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestNoFlowEnum checks that the specification lists no flows: the sidecar
// accepts whichever flow plugins it runs, so a flow is a name, never an
// enumeration that adding a plugin would have to edit.
func TestNoFlowEnum(t *testing.T) {
	spec := loadSpec(t)
	flow := asMap(t, dig(t, spec, "components", "schemas", "Flow"), "Flow")
	if _, ok := flow["enum"]; ok {
		t.Errorf("components.schemas.Flow has an enum: %v", flow["enum"])
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch t2 := v.(type) {
		case map[string]any:
			for k, e := range t2 {
				if k == "flow" {
					if m, ok := e.(map[string]any); ok && m["enum"] != nil {
						t.Errorf("%s.flow has an enum: %v", path, m["enum"])
					}
				}
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range t2 {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("", spec)
}

func TestWebhooksFollowStandardWebhooks(t *testing.T) {
	spec := loadSpec(t)
	for name, item := range asMap(t, spec["webhooks"], "webhooks") {
		t.Run(name, func(t *testing.T) {
			post := asMap(t, dig(t, item, "post"), name+".post")
			var headers []string
			for _, p := range post["parameters"].([]any) {
				ref, _ := p.(map[string]any)["$ref"].(string)
				param := asMap(t, resolve(t, spec, ref), ref)
				if param["in"] == "header" && param["required"] == true {
					headers = append(headers, param["name"].(string))
				}
			}
			sort.Strings(headers)
			if want := []string{"webhook-id", "webhook-signature", "webhook-timestamp"}; !slices.Equal(headers, want) {
				t.Errorf("required headers = %v, want %v", headers, want)
			}
			ref := dig(t, post, "requestBody", "content", "application/json", "schema", "$ref")
			if ref != "#/components/schemas/Event" {
				t.Errorf("body schema = %v, want the Event schema", ref)
			}
			if _, ok := asMap(t, post["responses"], "responses")["2XX"]; !ok {
				t.Error("no 2XX response documented")
			}
		})
	}
	sig := dig(t, spec, "components", "parameters", "WebhookSignature", "description").(string)
	for _, want := range []string{"v1,", "HMAC-SHA256", "whsec_", "constant time"} {
		if !strings.Contains(strings.Join(strings.Fields(sig), " "), want) {
			t.Errorf("the webhook-signature description does not mention %q", want)
		}
	}
}

// resolve follows a local $ref such as #/components/schemas/Payment.
func resolve(t *testing.T, spec map[string]any, ref string) any {
	t.Helper()
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		t.Fatalf("$ref %q is not local", ref)
	}
	var v any = spec
	for _, k := range strings.Split(path, "/") {
		k = strings.ReplaceAll(strings.ReplaceAll(k, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			t.Errorf("$ref %q does not resolve", ref)
			return nil
		}
		if v, ok = m[k]; !ok {
			t.Errorf("$ref %q does not resolve: no %q", ref, k)
			return nil
		}
	}
	return v
}

func TestEveryRefResolves(t *testing.T) {
	spec := loadSpec(t)
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				n++
				resolve(t, spec, ref)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(spec)
	if n < 50 {
		t.Errorf("found only %d $refs; the walk is broken", n)
	}
}

func TestEveryOperationHasAnIDAndErrorBodies(t *testing.T) {
	spec := loadSpec(t)
	ids := map[string]string{}
	for path, item := range asMap(t, spec["paths"], "paths") {
		for method, v := range asMap(t, item, path) {
			op := asMap(t, v, path+"."+method)
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s %s has no operationId", method, path)
			} else if prev, dup := ids[id]; dup {
				t.Errorf("operationId %s is used by %s and %s %s", id, prev, method, path)
			}
			ids[id] = method + " " + path
			for status, resp := range asMap(t, op["responses"], path+" responses") {
				code, err := strconv.Atoi(status)
				if err != nil || code < 400 {
					continue
				}
				r := asMap(t, resp, status)
				if ref, ok := r["$ref"].(string); ok {
					r = asMap(t, resolve(t, spec, ref), ref)
				}
				schema, _ := json.Marshal(dig(t, r, "content", "application/json", "schema"))
				if !strings.Contains(string(schema), "#/components/schemas/ErrorBody") {
					t.Errorf("%s %s answers %s without the ErrorBody schema", method, path, status)
				}
			}
		}
	}
}
