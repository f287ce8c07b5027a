package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
)

// TestUpstreamKeySwitchOver rehearses the upstream changing its signing
// key: the sidecar accepts answers and notifications signed with either
// of its two configured keys and says which verified, never the key.
func TestUpstreamKeySwitchOver(t *testing.T) {
	sb := sandboxtest.Start(t)
	e, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(),
		"PAYSIDECAR_UPSTREAM__PUBLIC_KEY="+sb.Keys.Upstream.PublicBase64,
		"PAYSIDECAR_UPSTREAM__PUBLIC_KEY_NEXT="+sb.Keys.UpstreamNext.PublicBase64)
	sc := startSidecar(t, e, api, notify, admin)
	ctx := ctxTimeout(t, time.Minute)

	pay := func() client.Payment {
		t.Helper()
		p, err := sc.Client.CreatePayment(ctx, benchOrder())
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
		waitFor(t, 20*time.Second, "payment "+p.ID+" paid", func() (bool, string) {
			got, err := sc.Client.GetPayment(ctx, p.ID)
			return err == nil && got.Status == client.StatusSucceeded, string(got.Status)
		})
		return p
	}
	pay()
	if err := sb.Control.SetSigningKey(ctx, sandbox.SigningKeyNext); err != nil {
		t.Fatal(err)
	}
	pay()
	for _, m := range []string{"paysidecar_upstream_answers_verified_total", "paysidecar_notify_verified_total"} {
		for _, key := range []string{"current", "next"} {
			if v := sc.metric(m, `key="`+key+`"`); v < 1 {
				t.Errorf("%s{key=%q} = %v, want at least 1", m, key, v)
			}
		}
	}
	logs := sc.logs.String()
	if !strings.Contains(logs, "upstream public keys") || !strings.Contains(logs, "upstream.public_key_next") {
		t.Errorf("the logs do not tell the switch-over:\n%s", tail(logs, 20))
	}
	for _, k := range []string{sb.Keys.Upstream.PublicBase64, sb.Keys.UpstreamNext.PublicBase64} {
		if strings.Contains(logs, k[60:120]) {
			t.Error("the logs show a key")
		}
	}
}

// TestUpstreamNextKeyRefusedWithoutConfig: a sidecar configured with one
// key, as before, refuses what another key signs.
func TestUpstreamNextKeyRefusedWithoutConfig(t *testing.T) {
	sb := sandboxtest.Start(t)
	e, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), "PAYSIDECAR_UPSTREAM__PUBLIC_KEY="+sb.Keys.Upstream.PublicBase64)
	sc := startSidecar(t, e, api, notify, admin)
	ctx := ctxTimeout(t, time.Minute)
	if _, err := sc.Client.CreatePayment(ctx, benchOrder()); err != nil {
		t.Fatalf("one key, signed with it: %v", err)
	}
	if err := sb.Control.SetSigningKey(context.Background(), sandbox.SigningKeyNext); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Client.CreatePayment(ctx, benchOrder()); err == nil {
		t.Fatal("an answer signed with an unconfigured key was accepted")
	}
}
