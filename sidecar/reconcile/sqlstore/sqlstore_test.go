package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/reconcile"
	"github.com/paysidecar/paysidecar/sidecar/reconcile/sqlstore"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/postgres"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
)

var quiet = slog.New(slog.DiscardHandler)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// engines opens the sidecar's store and this package's store on the same
// database, for SQLite and for PostgreSQL (in a schema of the test's own).
func engines(t *testing.T) map[string]func(t *testing.T) (store.Store, *sqlstore.Store) {
	return map[string]func(t *testing.T) (store.Store, *sqlstore.Store){
		"sqlite": func(t *testing.T) (store.Store, *sqlstore.Store) {
			path := filepath.Join(t.TempDir(), "db.sqlite")
			st, err := sqlite.Open(ctx(t), path, sqlite.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			s, err := sqlstore.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return st, s
		},
		"postgres": func(t *testing.T) (store.Store, *sqlstore.Store) {
			dsn := os.Getenv("PAYSIDECAR_TEST_POSTGRES_DSN")
			if dsn == "" {
				dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
			}
			conn, err := pgx.Connect(ctx(t), dsn)
			if err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("PostgreSQL is unreachable: %v", err)
				}
				t.Skipf("PostgreSQL is unreachable: %v", err)
			}
			_ = conn.Close(ctx(t))
			b := make([]byte, 6)
			_, _ = rand.Read(b)
			schema := "paysidecar_test_" + hex.EncodeToString(b)
			t.Cleanup(func() {
				c, err := pgx.Connect(context.Background(), dsn)
				if err == nil {
					_, _ = c.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
					_ = c.Close(context.Background())
				}
			})
			st, err := postgres.Open(ctx(t), dsn, postgres.WithSchema(schema), postgres.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			s, err := sqlstore.Open("postgres", dsn+"&search_path="+schema)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return st, s
		},
	}
}

var day = time.Date(2025, 6, 15, 0, 0, 0, 0, nkp.Beijing)

func TestLedgerAndRuns(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			st, s := open(t)
			for range 2 {
				if err := s.Migrate(ctx(t), quiet); err != nil {
					t.Fatal(err)
				}
			}
			testLedger(t, st, s)
			testRuns(t, s)
		})
	}
}

func testLedger(t *testing.T, st store.Store, s *sqlstore.Store) {
	at := day.Add(10 * time.Hour)
	pay := func(merchant, seq string, amt int64, to store.Status, finished time.Time, upstream string) {
		t.Helper()
		p := &store.Payment{ID: "pay_" + merchant + seq, MerchantID: merchant, OutTradeNo: seq, AmountFen: amt, ReqDate: "20250615", ReqSeqID: seq, CreatedAt: at.Add(-time.Hour)}
		if err := st.CreatePayment(ctx(t), p); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.TransitionPayment(ctx(t), p.ID, store.Transition{To: store.StatusProcessing, NkpSeqID: "N" + seq, At: at}); err != nil {
			t.Fatal(err)
		}
		if to != "" {
			tr := store.Transition{To: to, At: finished}
			if upstream != "" {
				tr.UpstreamFields = json.RawMessage(upstream)
			}
			if _, _, err := st.TransitionPayment(ctx(t), p.ID, tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Mixed case: byte order puts upper case first, which PostgreSQL's
	// default collation would not.
	pay("m", "b1", 100, store.StatusSucceeded, at, `{"trans_stat":"S","end_time":"20250615235959"}`)
	pay("m", "B2", 200, store.StatusFailed, at, "")
	pay("m", "a1", 300, "", time.Time{}, "")
	pay("m", "A9", 400, store.StatusSucceeded, day.AddDate(0, 0, -3), "") // outside the window
	pay("other", "c1", 500, store.StatusSucceeded, at, "")
	r := &store.Refund{ID: "ref_1", PaymentID: "pay_mb1", MerchantID: "m", OutRefundNo: "r1", AmountFen: 40, ReqDate: "20250615", ReqSeqID: "Z1"}
	if err := st.CreateRefund(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.TransitionRefund(ctx(t), r.ID, store.Transition{To: store.StatusSucceeded, At: at}); err != nil {
		t.Fatal(err)
	}
	var got []reconcile.Entry
	if err := s.Entries(ctx(t), "m", day.Add(-2*time.Hour), day.Add(26*time.Hour), func(e reconcile.Entry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for _, e := range got {
		seqs = append(seqs, e.ReqSeqID)
	}
	if want := []string{"B2", "Z1", "a1", "b1"}; !slices.Equal(seqs, want) {
		t.Fatalf("entries %v, want %v in byte order", seqs, want)
	}
	b1 := got[3]
	if b1.Kind != "payment" || b1.Amount != 100 || b1.Refunded != 40 || b1.Status != store.StatusSucceeded || b1.NkpSeqID != "Nb1" ||
		!b1.EndTime.Equal(time.Date(2025, 6, 15, 23, 59, 59, 0, nkp.Beijing)) {
		t.Fatalf("b1 = %+v (end_time comes from the upstream fields)", b1)
	}
	if b2 := got[0]; !b2.EndTime.Equal(at) {
		t.Fatalf("B2 end = %v, want the finishing time %v", b2.EndTime, at)
	}
	if a1 := got[2]; a1.Status != store.StatusProcessing || !a1.EndTime.IsZero() {
		t.Fatalf("a1 = %+v", a1)
	}
	z1 := got[1]
	if z1.Kind != "refund" || z1.PaymentReqSeqID != "b1" || z1.PaymentAmount != 100 || z1.PaymentRefunded != 40 {
		t.Fatalf("refund = %+v", z1)
	}
	e, found, err := s.Lookup(ctx(t), "m", "20250615", "A9")
	if err != nil || !found || e.ID != "pay_mA9" {
		t.Fatalf("lookup A9 = %+v %v %v", e, found, err)
	}
	if e, found, err := s.Lookup(ctx(t), "m", "20250615", "Z1"); err != nil || !found || e.Kind != "refund" {
		t.Fatalf("lookup Z1 = %+v %v %v", e, found, err)
	}
	if _, found, err := s.Lookup(ctx(t), "m", "20250615", "nope"); err != nil || found {
		t.Fatalf("lookup of nothing = %v %v", found, err)
	}
}

func testRuns(t *testing.T, s *sqlstore.Store) {
	t0 := day.Add(9 * time.Hour)
	start := func(id string, at time.Time) bool {
		t.Helper()
		ok, err := s.StartRun(ctx(t), reconcile.RunStart{ID: id, MerchantID: "m", Date: "20250614", Trigger: reconcile.TriggerSchedule,
			Owner: "o", StartedAt: at, LeaseUntil: at.Add(time.Hour), Exclusive: true})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !start("r1", t0) || start("r2", t0.Add(time.Minute)) {
		t.Fatal("two scheduled runs of a day were claimed")
	}
	rep := reconcile.Report{RunID: "r1", MerchantID: "m", Date: "20250614", Trigger: reconcile.TriggerSchedule, Status: reconcile.StatusFailed,
		StartedAt: t0, FinishedAt: t0.Add(time.Second), Error: "not ready", Counts: map[reconcile.Kind]int{}}
	if err := s.FinishRun(ctx(t), rep); err != nil {
		t.Fatal(err)
	}
	if !start("r3", t0.Add(2*time.Minute)) {
		t.Fatal("a failed run kept its claim")
	}
	diffs := []reconcile.Difference{{Seq: 1, Kind: reconcile.AmountDiffers, ReqSeqID: "p1", Reason: "x"}, {Seq: 2, Kind: reconcile.MissingInFile, ReqSeqID: "p2"}, {Seq: 3, Kind: reconcile.MalformedRow, Line: 7}}
	if err := s.AddDifferences(ctx(t), "r3", diffs); err != nil {
		t.Fatal(err)
	}
	rep = reconcile.Report{RunID: "r3", Status: reconcile.StatusDifferences, FinishedAt: t0.Add(3 * time.Minute),
		Counts: map[reconcile.Kind]int{reconcile.AmountDiffers: 1, reconcile.MissingInFile: 1, reconcile.MalformedRow: 1}, FileRecords: 12}
	if err := s.FinishRun(ctx(t), rep); err != nil {
		t.Fatal(err)
	}
	if start("r4", t0.Add(5*time.Hour)) {
		t.Fatal("a finished run's day was claimed again")
	}
	got, err := s.GetRun(ctx(t), "r3")
	if err != nil || got.Status != reconcile.StatusDifferences || got.FileRecords != 12 || got.Date != "20250614" || got.Total() != 3 ||
		!got.StartedAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("run = %+v, %v", got, err)
	}
	page, err := s.ListDifferences(ctx(t), "r3", 1, 1)
	if err != nil || len(page) != 1 || page[0].Seq != 2 || page[0].ReqSeqID != "p2" {
		t.Fatalf("page = %+v, %v", page, err)
	}
	runs, err := s.ListRuns(ctx(t), "m", time.Time{}, 10)
	if err != nil || len(runs) != 2 || runs[0].RunID != "r3" {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
	if latest, err := s.LatestRun(ctx(t), "m", "20250614"); err != nil || latest.RunID != "r3" {
		t.Fatalf("latest = %+v, %v", latest, err)
	}
	if _, err := s.GetRun(ctx(t), "nope"); err != reconcile.ErrRunNotFound {
		t.Fatalf("unknown run: %v", err)
	}
}
