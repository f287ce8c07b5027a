package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/paysidecar/paysidecar/sdk/client"
)

// hostOnlyModules are modules of the sidecar that a plugin must never
// depend on.
var hostOnlyModules = []string{
	"github.com/paysidecar/paysidecar ", "github.com/jackc/pgx", "modernc.org/sqlite", "github.com/chromedp",
	"github.com/knadh/koanf", "github.com/prometheus/client_golang", "github.com/spf13/cobra",
	"github.com/pressly/goose", "go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters",
}

// TestPluginFromAnotherModule builds a flow plugin the way an author
// outside this repository does, in a module of its own whose go.mod
// requires only the SDK (replaced by the local copy, with the SDK's
// go.sum), checks that its requirements hold nothing of the host, and pays
// through it beside the sidecar's own plugins; it gives no pay recipe, so
// its pay parameters come from its PayParams.
func TestPluginFromAnotherModule(t *testing.T) {
	sdk, err := filepath.Abs(filepath.Join("..", "..", "sdk"))
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "outsideflow", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(sdk, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	gomod := "module example.com/outsidepay\n\ngo 1.26.8\n\nrequire github.com/paysidecar/paysidecar/sdk v0.0.0\n\nreplace github.com/paysidecar/paysidecar/sdk => " + sdk + "\n"
	for name, body := range map[string][]byte{"main.go": src, "go.mod": []byte(gomod), "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(mod, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "outside-pay")
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", bin, "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		// Outside this repository there is no go.work.
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(mod, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	var required []string
	for _, r := range f.Require {
		required = append(required, r.Mod.Path+" "+r.Mod.Version)
		for _, host := range hostOnlyModules {
			if strings.HasPrefix(r.Mod.Path+" ", host) {
				t.Errorf("the plugin's go.mod requires %s, which only the host needs", r.Mod.Path)
			}
		}
	}
	t.Logf("the plugin's go.mod requires %d modules: %s", len(required), strings.Join(required, ", "))

	e := newEnv(t, "PAYSIDECAR_PLUGINS__FLOWS__OUTSIDE_PAY__PATH="+bin, "PAYSIDECAR_PLUGINS__FLOWS__OUTSIDE_PAY__SETTINGS__NOTE=hello")
	ctx := ctxTimeout(t, 30*time.Second)
	p, err := e.sc.Client.CreatePayment(ctx, client.CreatePaymentRequest{Flow: "outside-pay", OutTradeNo: "outside-1", AmountFen: 42, Description: "outside"})
	if err != nil {
		t.Fatal(err)
	}
	var params struct {
		CashierURL string `json:"cashier_url"`
		Note       string `json:"note"`
	}
	if err := json.Unmarshal(p.PayParams, &params); err != nil || !strings.HasPrefix(params.CashierURL, e.sb.URL+"/qr/") || params.Note != "hello" {
		t.Fatalf("pay_params = %s (%v)", p.PayParams, err)
	}
	// This flow gives no pay recipe, so the host asked it for the pay
	// parameters: the contract's PayParams still serves such flows.
	if n := e.sc.metric("paysidecar_plugin_call_duration_seconds_count", `plugin="outside-pay"`, `method="PayParams"`, `outcome="ok"`); n != 1 {
		t.Errorf("%d PayParams calls for a flow without a pay recipe, want one", int(n))
	}
	resp, err := e.sb.HTTP.PostForm(params.CashierURL, url.Values{"action": {"pay"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("paying on the cashier page: HTTP %d", resp.StatusCode)
	}
	e.waitStatus(t, p.ID, client.StatusSucceeded)
	e.waitEvent(t, client.EventPaymentSucceeded, p.ID)
}
