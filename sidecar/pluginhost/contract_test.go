package pluginhost

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// TestContractVersions runs a plugin of each contract version beside one
// of a version the host does not know: the host agrees on version 2 with
// the new plugin and version 1 with the old one, logs the agreed version,
// refuses the third with one clear log line and keeps running the others.
func TestContractVersions(t *testing.T) {
	h := newHarness(t, []PluginConfig{
		mockConfig(t, "v2"),
		{Name: "future", Path: futureBin},
		{Name: "mock-v1", Path: mockV1Bin, Settings: map[string]string{"label": "v1", "app_secret": "v1-secret-never-logged"}},
	})
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !h.m.Ready() {
		t.Errorf("not Ready with the refused plugin left out")
	}
	versions := map[string]float64{}
	for _, e := range h.logs.entries("plugin ready") {
		versions[e["plugin"].(string)] = e["api_version"].(float64)
	}
	if versions["mock"] != 2 || versions["mock-v1"] != 1 || len(versions) != 2 {
		t.Errorf("agreed versions logged = %v, want mock 2 and mock-v1 1 only", versions)
	}
	// One line says it, and nothing else about the plugin above info.
	refused := 0
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["plugin"] == "future" && (e["level"] == "WARN" || e["level"] == "ERROR") {
			refused++
		}
	}
	got := h.logs.entries("flow plugin refused: it speaks contract version 99, this host speaks 2 and 1; rebuild it against a paysidecar plugin SDK this host supports")
	if len(got) != 1 || got[0]["plugin"] != "future" || got[0]["level"] != "ERROR" || refused != 1 {
		t.Errorf("refusal logged as %v (%d lines above info about it)", got, refused)
	}
	if _, err := h.m.Flow("future"); !errors.Is(err, ErrUnknownFlow) {
		t.Errorf("Flow(refused) = %v, want ErrUnknownFlow", err)
	}
	var names []string
	for _, info := range h.m.Infos() {
		names = append(names, info.Name)
	}
	if strings.Join(names, ",") != "mock,mock-v1" {
		t.Errorf("Infos = %v", names)
	}

	old, err := h.m.Flow("mock-v1")
	if err != nil {
		t.Fatal(err)
	}
	s := shape(t, old, t.Context(), nil)
	if s.Fields["contract"] != "v1" || s.Fields["label"] != "v1" {
		t.Errorf("v1 plugin answered %v", s.Fields)
	}
	if err := old.Check(t.Context()); err != nil {
		t.Errorf("Check of a v1 plugin: %v", err)
	}
	if strings.Contains(h.logs.String(), "v1-secret-never-logged") {
		t.Errorf("a v1 plugin's secret setting appears in the host log")
	}
	if v := testutil.ToFloat64(h.m.metrics.up.WithLabelValues("future")); v != 0 {
		t.Errorf("paysidecar_plugin_up of the refused plugin = %v", v)
	}
}

// TestHostServicesThroughTheManager has a real plugin process sign and
// verify with the host's keys, only those its configuration grants, and
// log through the host with its secret redacted, whichever way it logs.
func TestHostServicesThroughTheManager(t *testing.T) {
	merchant, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	upstreamKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "mock-app-secret-9f8e7d"
	cfg := mockConfig(t, "keys")
	cfg.Settings["app_secret"] = secret
	cfg.Keys = []string{"merchant"}
	h := newHarness(t, []PluginConfig{cfg}, WithKeys(map[string]Key{
		"merchant": {Private: merchant},
		"upstream": {Public: &upstreamKey.PublicKey},
	}))
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}
	s := shape(t, f, t.Context(), map[string]string{"mock.sign": "merchant", "mock.log": "signed through the host"})
	sig, err := base64.StdEncoding.DecodeString(s.Fields["signature"])
	if err != nil {
		t.Fatalf("signature %q: %v", s.Fields["signature"], err)
	}
	sum := sha256.Sum256([]byte("pay_1"))
	if err := rsa.VerifyPKCS1v15(&merchant.PublicKey, crypto.SHA256, sum[:], sig); err != nil || s.Fields["verified"] != "true" {
		t.Errorf("signature from the host: %v, verified %q", err, s.Fields["verified"])
	}
	s = shape(t, f, t.Context(), map[string]string{"mock.sign": "upstream"})
	if !strings.Contains(s.Fields["signature"], `key "upstream" is not granted to flow mock`) {
		t.Errorf("signing with a key not granted: %q", s.Fields["signature"])
	}
	s = shape(t, f, t.Context(), map[string]string{"mock.sign": "merchant", "mock.verify": "upstream"})
	if !strings.Contains(s.Fields["verified"], "not granted") {
		t.Errorf("verifying with a key not granted: %q", s.Fields["verified"])
	}

	shape(t, f, t.Context(), map[string]string{"mock.print": "printed " + secret + " past the logger"})
	waitFor(t, 5*time.Second, "the printed line", func() bool { return len(h.logs.entries("printed [redacted] past the logger")) == 1 })
	logged := h.logs.entries("signed through the host")
	if len(logged) != 1 || logged[0]["secret"] != "[redacted]" || logged[0]["plugin"] != "mock" || logged[0]["payment_id"] != "pay_1" {
		t.Errorf("record logged through the host = %v", logged)
	}
	if strings.Contains(h.logs.String(), secret) {
		t.Errorf("the secret setting appears in the host log")
	}
}

// TestMerchantSettingsThroughTheManager starts a real plugin process with
// a service provider's merchant that has its own app: calls naming the
// merchant use its settings, its secret is redacted from what the plugin
// logs, and a merchant's value of a setting that is not per merchant
// keeps the plugin from starting.
func TestMerchantSettingsThroughTheManager(t *testing.T) {
	const merchantSecret = "merchant-two-secret-4b3a2c"
	cfg := mockConfig(t, "merchants")
	cfg.Merchants = map[string]map[string]string{"6666000100000002": {"app_id": "wx-merchant-two", "app_secret": merchantSecret}}
	h := newHarness(t, []PluginConfig{cfg})
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}
	for merchant, app := range map[string]string{"6666000100000002": "wx-merchant-two", "6666000100000001": "mock-app"} {
		links, err := f.LaunchLinks(t.Context(), plugin.LaunchInput{MerchantID: merchant, Query: "checkout=chk_1"})
		if err != nil || !strings.Contains(links.PlainScheme, "appid="+app+"&checkout=chk_1") {
			t.Errorf("links of merchant %s = %+v, %v; want app %s", merchant, links, err, app)
		}
	}
	shape(t, f, t.Context(), map[string]string{"mock.print": "printed " + merchantSecret + " past the logger"})
	waitFor(t, 5*time.Second, "the printed line", func() bool { return len(h.logs.entries("printed [redacted] past the logger")) == 1 })
	if strings.Contains(h.logs.String(), merchantSecret) {
		t.Errorf("a merchant's secret appears in the host log")
	}

	bad := mockConfig(t, "bad-merchant")
	bad.Merchants = map[string]map[string]string{"6666000100000002": {"label": "mine"}}
	hb := newHarness(t, []PluginConfig{bad})
	if err := hb.m.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "merchants.6666000100000002.label") {
		t.Errorf("Start with a merchant's own label: %v", err)
	}
}
