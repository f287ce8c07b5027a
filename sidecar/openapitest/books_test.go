package openapitest

import (
	"reflect"
	"slices"
	"testing"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/reconcile"
	"github.com/paysidecar/paysidecar/sidecar/statements"
)

// TestBooksClientTypesMatchTheServer checks that the Go client's shapes of
// the statements and reconciliation API, which the server answers in (with
// amounts as integer fen), have a field for every field of the server's
// own types (package reconcile and statements), so that the API leaves
// nothing out; the specification's schemas are checked against the client's
// in turn (TestSchemasMatchTheGoTypes).
func TestBooksClientTypesMatchTheServer(t *testing.T) {
	tests := []struct {
		name           string
		client, server any
	}{
		{"StatementFile", client.StatementFile{}, statements.File{}},
		{"StatementRowError", client.StatementRowError{}, statements.RowError{}},
		{"TradeRow", client.TradeRow{}, statements.TradeRow{}},
		{"SettleRow", client.SettleRow{}, statements.SettleRow{}},
		{"SplitRow", client.SplitRow{}, statements.SplitRow{}},
		{"WithdrawalRow", client.WithdrawalRow{}, statements.WithdrawalRow{}},
		{"StatementPage", client.StatementPage{}, reconcile.StatementPage{}},
		{"ReconciliationSettlement", client.ReconciliationSettlement{}, reconcile.Settlement{}},
		{"ReconciliationDifference", client.ReconciliationDifference{}, reconcile.Difference{}},
		{"ReconciliationTotals", client.ReconciliationTotals{}, reconcile.Totals{}},
		{"Reconciliation", client.Reconciliation{}, reconcile.Report{}},
		{"StartReconciliationRequest", client.StartReconciliationRequest{}, reconcile.RunRequest{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, cr := jsonFields(reflect.TypeOf(tt.client))
			sa, sr := jsonFields(reflect.TypeOf(tt.server))
			if !slices.Equal(ca, sa) {
				t.Errorf("client fields %v, the server's %T has %v", ca, tt.server, sa)
			}
			if !slices.Equal(cr, sr) {
				t.Errorf("client always-present fields %v, the server's %T always sends %v", cr, tt.server, sr)
			}
		})
	}
}
