// Package reconcile proves that the sidecar's books match the upstream's:
// it compares a day's trade bill with the payments and refunds the
// sidecar recorded, and the bill's totals with the settlement bill, and
// names every difference.
//
// Invariants:
//   - Nothing is held whole in memory. The trade bill is sorted by serial
//     (huifu_id, req_date, req_seq_id) with an external sort whose memory
//     is bounded by Config.SortChunk records; the ledger is read in the same
//     order in one pass; the two are merged. Differences are handed to the
//     RunStore in batches and at most Config.ReportLimit are kept in the
//     Report.
//   - A record belongs to the day its upstream end time falls on (Beijing
//     time). The ledger is read for the day widened by Config.Slack, and a
//     bill record with no ledger record in that window is looked up by its
//     serial, so that a result the sidecar learned late is still matched.
//   - Each difference is named once: a malformed record that still shows
//     its serial stands for that serial, so its ledger record is not also
//     called missing from the bill.
//   - A difference the sidecar can settle itself (it has no final result
//     for a transaction the bill says is final) is handed to the Settler,
//     which queries the upstream and applies the answer through the
//     ledger, producing the usual events; the report says what it did.
//   - Every run is stored through the RunStore. A scheduled run of a day is
//     claimed exclusively, so replicas sharing a store run it once.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/statements"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// Kind names a kind of difference.
type Kind string

// The kinds of difference.
const (
	// MissingInLedger: the bill has a transaction the sidecar never
	// recorded.
	MissingInLedger Kind = "missing_in_ledger"
	// MissingInFile: the sidecar recorded a final transaction of the day
	// that the bill lacks.
	MissingInFile Kind = "missing_in_file"
	// AmountDiffers: the bill's amount is not the sidecar's.
	AmountDiffers Kind = "amount_differs"
	// StateDiffers: the bill's final state is not the sidecar's.
	StateDiffers Kind = "state_differs"
	// RefundExceedsPayment: the refunds of a payment add up to more than
	// the payment.
	RefundExceedsPayment Kind = "refund_exceeds_payment"
	// SettlementDiffers: a merchant's settlement bill does not add up to
	// its trade bill.
	SettlementDiffers Kind = "settlement_differs"
	// MalformedRow: a record (or a whole file) could not be read.
	MalformedRow Kind = "malformed_row"
)

// Kinds lists every kind, in the order reports show them.
var Kinds = []Kind{MissingInLedger, MissingInFile, AmountDiffers, StateDiffers, RefundExceedsPayment, SettlementDiffers, MalformedRow}

// Entry is a payment or refund as the sidecar's ledger holds it.
type Entry struct {
	// Kind is "payment" or "refund".
	Kind       string
	ID         string
	MerchantID string
	ReqDate    string
	ReqSeqID   string
	NkpSeqID   string
	Amount     nkp.Fen
	Status     store.Status
	// EndTime is when the upstream says the transaction ended (end_time
	// of its verified answer), else when the sidecar saw it end; zero
	// while it is not final.
	EndTime time.Time
	// Refunded is, for a payment, the total of its succeeded refunds.
	Refunded nkp.Fen
	// For a refund: its payment's serial, amount and refunded total.
	PaymentReqDate  string
	PaymentReqSeqID string
	PaymentAmount   nkp.Fen
	PaymentRefunded nkp.Fen
}

// LedgerReader reads the sidecar's payments and refunds.
type LedgerReader interface {
	// Entries calls fn for each payment and refund of merchantID that may
	// belong to a day: those that became final in [from, to) and those
	// not final created before to, ordered by (req_date, req_seq_id) in
	// byte order. An error from fn stops the reading and is returned.
	Entries(ctx context.Context, merchantID string, from, to time.Time, fn func(Entry) error) error
	// Lookup finds the payment or refund of merchantID with a serial.
	Lookup(ctx context.Context, merchantID, reqDate, reqSeqID string) (Entry, bool, error)
}

// Settlement is what the Settler did about a difference.
type Settlement struct {
	// Outcome is "settled" (the ledger now holds a final state), "open"
	// (the upstream still says it is not final), or "failed".
	Outcome string `json:"outcome"`
	// Status is the ledger's state after the attempt.
	Status store.Status `json:"status,omitempty"`
	// Error says why it failed.
	Error string `json:"error,omitempty"`
}

// Settler settles a transaction the sidecar has no final result for, by
// asking the upstream and applying the answer through the ledger (so the
// application gets the usual event).
type Settler interface {
	Settle(ctx context.Context, e Entry) Settlement
}

// Difference is one thing that does not match.
type Difference struct {
	// Seq numbers the run's differences from 1.
	Seq  int  `json:"seq"`
	Kind Kind `json:"kind"`
	// Object is "payment" or "refund", when known.
	Object     string `json:"object,omitempty"`
	MerchantID string `json:"merchant_id,omitempty"`
	ReqDate    string `json:"req_date,omitempty"`
	ReqSeqID   string `json:"req_seq_id,omitempty"`
	NkpSeqID   string `json:"nkp_seq_id,omitempty"`
	// LedgerID, LedgerStatus and LedgerAmountFen are the sidecar's side.
	LedgerID        string       `json:"ledger_id,omitempty"`
	LedgerStatus    store.Status `json:"ledger_status,omitempty"`
	LedgerAmountFen nkp.Fen      `json:"ledger_amount_fen,omitempty"`
	// FileStat and FileAmountFen are the bill's side; File and Line where
	// it says so.
	FileStat      string  `json:"file_stat,omitempty"`
	FileAmountFen nkp.Fen `json:"file_amount_fen,omitempty"`
	File          string  `json:"file,omitempty"`
	Line          int     `json:"line,omitempty"`
	// Reason explains the difference in words.
	Reason string `json:"reason"`
	// Settleable means the sidecar can settle it itself; Settlement says
	// what happened when it tried.
	Settleable bool        `json:"settleable,omitempty"`
	Settlement *Settlement `json:"settlement,omitempty"`
}

// Totals are one merchant's sums for the day, in fen.
type Totals struct {
	MerchantID string `json:"merchant_id"`
	// From the trade bill.
	FilePayCount    int     `json:"file_pay_count"`
	FilePayFen      nkp.Fen `json:"file_pay_fen"`
	FileRefundCount int     `json:"file_refund_count"`
	FileRefundFen   nkp.Fen `json:"file_refund_fen"`
	FileFeeFen      nkp.Fen `json:"file_fee_fen"`
	FileSettleFen   nkp.Fen `json:"file_settle_fen"`
	// From the sidecar's ledger.
	LedgerPayCount    int     `json:"ledger_pay_count"`
	LedgerPayFen      nkp.Fen `json:"ledger_pay_fen"`
	LedgerRefundCount int     `json:"ledger_refund_count"`
	LedgerRefundFen   nkp.Fen `json:"ledger_refund_fen"`
	// From the settlement bill, when there is one.
	Settle *statements.SettleRow `json:"settle,omitempty"`
}

// Run statuses.
const (
	StatusRunning     = "running"
	StatusClean       = "clean"
	StatusDifferences = "differences"
	StatusFailed      = "failed"
)

// Triggers of a run.
const (
	TriggerSchedule = "schedule"
	TriggerAPI      = "api"
)

// Report is the result of a run.
type Report struct {
	RunID      string    `json:"run_id"`
	MerchantID string    `json:"merchant_id"`
	Date       string    `json:"date"`
	Trigger    string    `json:"trigger"`
	Status     string    `json:"status"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Compared counts the bill records and the ledger records looked at.
	FileRecords   int `json:"file_records"`
	LedgerRecords int `json:"ledger_records"`
	// Counts counts differences by kind; every kind is present.
	Counts map[Kind]int `json:"counts"`
	// Settled counts differences the sidecar settled itself.
	Settled int      `json:"settled"`
	Totals  []Totals `json:"totals"`
	Files   []string `json:"files"`
	// Differences are the first ReportLimit differences; Truncated is set
	// when there were more (all are kept by the RunStore).
	Differences []Difference `json:"differences"`
	Truncated   bool         `json:"truncated,omitempty"`
	Error       string       `json:"error,omitempty"`
}

// Total returns the number of differences.
func (r *Report) Total() int {
	n := 0
	for _, c := range r.Counts {
		n += c
	}
	return n
}

// Bills gives the statements of a day.
type Bills interface {
	// MerchantID is the merchant whose bills these are.
	MerchantID() string
	// Ensure returns the files of a bill type and date, fetching them when
	// they are not kept; the error wraps statements.ErrNotReady when the
	// upstream has not finished them.
	Ensure(ctx context.Context, billType, fileDate string) ([]statements.File, error)
	// Refetch downloads the files again, whether they are kept or not.
	Refetch(ctx context.Context, billType, fileDate string) ([]statements.File, error)
}

// RunOptions qualify a run.
type RunOptions struct {
	// Trigger is TriggerSchedule or TriggerAPI. A scheduled run claims its
	// day first.
	Trigger string
	// Refetch downloads the day's statements again even when they are
	// kept, for a statement the upstream issued anew.
	Refetch bool
}

// Config configures a Reconciler.
type Config struct {
	// Slack widens the day the ledger is read for; default 2 h.
	Slack time.Duration
	// SortChunk bounds the bill records held in memory while sorting;
	// default 50,000 (about 15 MiB).
	SortChunk int
	// TempDir holds the sort's run files; the system's when empty.
	TempDir string
	// ReportLimit is how many differences a Report holds; default 1000.
	ReportLimit int
	// MaxSettle bounds the settlements tried in one run; default 1000.
	MaxSettle int
	// Owner names this process in run claims.
	Owner string
	// Lease is how long a claimed scheduled run stays claimed if its owner
	// dies; default 1 h.
	Lease time.Duration
}

// Reconciler runs reconciliations.
type Reconciler struct {
	cfg     Config
	bills   Bills
	ledger  LedgerReader
	runs    RunStore
	settler Settler
	now     func() time.Time
	log     *slog.Logger
	events  EventSink
	metrics *Metrics
}

// Deps are the parts a Reconciler works with. Bills, Ledger and Runs are
// required.
type Deps struct {
	Bills  Bills
	Ledger LedgerReader
	Runs   RunStore
	// Settler settles what the sidecar can settle itself; without one
	// such differences are only reported.
	Settler Settler
	// Events receives reconciliation.completed; optional.
	Events EventSink
	// Metrics records runs; optional.
	Metrics *Metrics
	Now     func() time.Time
	Logger  *slog.Logger
}

// New returns a Reconciler.
func New(cfg Config, d Deps) (*Reconciler, error) {
	if d.Bills == nil || d.Ledger == nil || d.Runs == nil {
		return nil, errors.New("reconcile: bills, ledger and run store are required")
	}
	if cfg.Slack <= 0 {
		cfg.Slack = 2 * time.Hour
	}
	if cfg.SortChunk <= 0 {
		cfg.SortChunk = 50_000
	}
	if cfg.ReportLimit <= 0 {
		cfg.ReportLimit = 1000
	}
	if cfg.MaxSettle <= 0 {
		cfg.MaxSettle = 1000
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Hour
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = host + "-" + strconv.Itoa(os.Getpid())
	}
	r := &Reconciler{cfg: cfg, bills: d.Bills, ledger: d.Ledger, runs: d.Runs, settler: d.Settler,
		now: d.Now, log: d.Logger, events: d.Events, metrics: d.Metrics}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// ErrClaimed is returned by a scheduled run of a day another replica has
// claimed or already finished.
var ErrClaimed = errors.New("the day's scheduled reconciliation is claimed or done")

// ErrBadDate is wrapped by the error of a date that is not yyyyMMdd.
var ErrBadDate = errors.New("date must be yyyyMMdd")

// Run reconciles the trade day date (yyyyMMdd). With TriggerSchedule it
// first claims the day, and returns ErrClaimed when it cannot. The run is
// stored, whatever its result; a run that could not complete (a bill not
// ready, the store unreachable) has status failed and its error is also
// returned.
func (r *Reconciler) Run(ctx context.Context, date string, opts RunOptions) (*Report, error) {
	trigger := opts.Trigger
	day, err := time.ParseInLocation(nkp.DateLayout, date, nkp.Beijing)
	if err != nil || len(date) != 8 {
		return nil, fmt.Errorf("reconcile: %q: %w", date, ErrBadDate)
	}
	start := r.now()
	rep := &Report{RunID: newRunID(start), MerchantID: r.bills.MerchantID(), Date: date, Trigger: trigger,
		Status: StatusRunning, StartedAt: start.UTC(), Counts: map[Kind]int{}}
	for _, k := range Kinds {
		rep.Counts[k] = 0
	}
	ok, err := r.runs.StartRun(ctx, RunStart{ID: rep.RunID, MerchantID: rep.MerchantID, Date: date, Trigger: trigger,
		Owner: r.cfg.Owner, StartedAt: start, LeaseUntil: start.Add(r.cfg.Lease), Exclusive: trigger == TriggerSchedule})
	if err != nil {
		return nil, fmt.Errorf("reconcile: start run: %w", err)
	}
	if !ok {
		return nil, ErrClaimed
	}
	sink := &diffSink{r: r, rep: rep, ctx: ctx}
	fetch := r.bills.Ensure
	if opts.Refetch {
		fetch = r.bills.Refetch
	}
	runErr := r.reconcile(ctx, day, rep, sink, fetch)
	if runErr == nil {
		runErr = sink.flush()
	}
	rep.FinishedAt = r.now().UTC()
	switch {
	case runErr != nil:
		rep.Status = StatusFailed
		rep.Error = runErr.Error()
	case rep.Total() == 0:
		rep.Status = StatusClean
	default:
		rep.Status = StatusDifferences
	}
	if err := r.runs.FinishRun(context.WithoutCancel(ctx), *rep); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("reconcile: store run: %w", err))
	}
	r.metrics.observe(rep)
	if rep.Status != StatusFailed && r.events != nil {
		if err := r.events.Completed(context.WithoutCancel(ctx), rep); err != nil {
			r.log.Error("reconciliation event not stored", "run", rep.RunID, "error", err)
		}
	}
	r.log.Info("reconciliation finished", "date", date, "run", rep.RunID, "status", rep.Status, "differences", rep.Total(),
		"file_records", rep.FileRecords, "ledger_records", rep.LedgerRecords)
	if runErr != nil {
		return rep, fmt.Errorf("reconcile %s: %w", date, runErr)
	}
	return rep, nil
}

func newRunID(t time.Time) string {
	return "rec_" + strings.ToLower(nkp.NewReqSeqID(t))
}

// diffSink numbers differences, keeps the first ones in the report and
// hands them to the RunStore in batches.
type diffSink struct {
	r     *Reconciler
	rep   *Report
	ctx   context.Context
	batch []Difference
	n     int
}

func (s *diffSink) add(d Difference) error {
	s.n++
	d.Seq = s.n
	s.rep.Counts[d.Kind]++
	if d.Settlement != nil && d.Settlement.Outcome == "settled" {
		s.rep.Settled++
	}
	if len(s.rep.Differences) < s.r.cfg.ReportLimit {
		s.rep.Differences = append(s.rep.Differences, d)
	} else {
		s.rep.Truncated = true
	}
	s.batch = append(s.batch, d)
	if len(s.batch) >= 500 {
		return s.flush()
	}
	return nil
}

func (s *diffSink) flush() error {
	if len(s.batch) == 0 {
		return nil
	}
	if err := s.r.runs.AddDifferences(s.ctx, s.rep.RunID, s.batch); err != nil {
		return fmt.Errorf("store differences: %w", err)
	}
	s.batch = s.batch[:0]
	return nil
}

// reconcile does the work of one run.
func (r *Reconciler) reconcile(ctx context.Context, day time.Time, rep *Report, sink *diffSink, fetch fetchFunc) error {
	date := rep.Date
	trade, err := fetch(ctx, nkp.BillTrade, date)
	if err != nil {
		return fmt.Errorf("trade bill: %w", err)
	}
	tmp, err := os.MkdirTemp(r.cfg.TempDir, "paysidecar-reconcile-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	m := &merger{r: r, ctx: ctx, sink: sink, rep: rep, dayStart: day, dayEnd: day.AddDate(0, 0, 1),
		totals: map[string]*Totals{}, malformedIn: map[string]bool{}, refunds: newSorter(tmp, r.cfg.SortChunk), settleFile: map[string]string{}}
	defer m.refunds.Close()
	file := newSorter(tmp, r.cfg.SortChunk)
	defer file.Close()
	for _, f := range trade {
		rep.Files = append(rep.Files, f.Name)
		if err := m.readTrade(f, file); err != nil {
			return err
		}
	}
	sorted, err := file.Sorted()
	if err != nil {
		return err
	}
	defer sorted.Close()
	if err := m.merge(sorted); err != nil {
		return err
	}
	if err := m.checkRefunds(); err != nil {
		return err
	}
	return m.checkSettlement(date, fetch)
}

// fetchFunc gives the files of a bill type and date.
type fetchFunc func(ctx context.Context, billType, fileDate string) ([]statements.File, error)

// readTrade reads a trade bill into the sorter, reporting what cannot be
// read.
func (m *merger) readTrade(f statements.File, into *sorter) error {
	rd, err := statements.Open(f.Path, nkp.BillTrade)
	if err != nil {
		var fe *statements.FileError
		if errors.As(err, &fe) {
			m.malformedIn[""] = true
			return m.sink.add(Difference{Kind: MalformedRow, File: f.Name, Reason: fe.Reason})
		}
		return err
	}
	defer func() { _ = rd.Close() }()
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var re *statements.RowError
		if errors.As(err, &re) {
			m.rep.FileRecords++
			m.malformedIn[re.HuifuID] = true
			if re.ReqSeqID != "" && re.ReqDate != "" && re.HuifuID != "" {
				// It stands for its serial in the merge.
				if err := into.Add([]string{key(re.HuifuID, re.ReqDate, re.ReqSeqID), "bad", f.Name, strconv.Itoa(re.Line), re.Reason}); err != nil {
					return err
				}
				continue
			}
			if err := m.sink.add(Difference{Kind: MalformedRow, MerchantID: re.HuifuID, File: f.Name, Line: re.Line, Reason: re.Reason}); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			m.malformedIn[""] = true
			return m.sink.add(Difference{Kind: MalformedRow, File: f.Name, Reason: err.Error()})
		}
		t := row.(statements.TradeRow)
		m.rep.FileRecords++
		m.fileTotals(t)
		if err := into.Add(encodeRow(f.Name, t)); err != nil {
			return err
		}
	}
}

func key(huifu, reqDate, reqSeqID string) string {
	return huifu + "\x00" + reqDate + "\x00" + reqSeqID
}

// encodeRow turns the fields of a trade row the merge needs into a sort
// record.
func encodeRow(file string, t statements.TradeRow) []string {
	return []string{key(t.HuifuID, t.ReqDate, t.ReqSeqID), "row", file, strconv.Itoa(t.Line), t.TransType, t.TransStat,
		strconv.FormatInt(int64(t.TransAmt), 10), t.NkpSeqID, t.OrgReqDate, t.OrgReqSeqID, t.HuifuID, t.ReqDate, t.ReqSeqID}
}

// fileRec is a decoded sort record.
type fileRec struct {
	key       string
	bad       bool
	file      string
	line      int
	reason    string
	transType string
	stat      string
	amount    nkp.Fen
	nkpSeq    string
	orgDate   string
	orgSeq    string
	huifu     string
	reqDate   string
	reqSeq    string
}

func decodeRec(rec []string) fileRec {
	line, _ := strconv.Atoi(rec[3])
	f := fileRec{key: rec[0], bad: rec[1] == "bad", file: rec[2], line: line}
	parts := strings.SplitN(rec[0], "\x00", 3)
	f.huifu, f.reqDate, f.reqSeq = parts[0], parts[1], parts[2]
	if f.bad {
		f.reason = rec[4]
		return f
	}
	amt, _ := strconv.ParseInt(rec[6], 10, 64)
	f.transType, f.stat, f.amount, f.nkpSeq, f.orgDate, f.orgSeq = rec[4], rec[5], nkp.Fen(amt), rec[7], rec[8], rec[9]
	return f
}

func (f fileRec) object() string {
	if f.transType == nkp.TransRefund {
		return "refund"
	}
	return "payment"
}

// merger merges the sorted bill with the ledger.
type merger struct {
	r        *Reconciler
	ctx      context.Context
	sink     *diffSink
	rep      *Report
	dayStart time.Time
	dayEnd   time.Time
	totals   map[string]*Totals
	// malformedIn marks merchants whose bill had unreadable records, whose
	// settlement cannot be checked exactly ("" for a whole file).
	malformedIn map[string]bool
	// refunds collects refunds whose payment must be checked for being
	// refunded more than paid, keyed by the payment's serial.
	refunds *sorter
	// settleFile names the settlement bill of each merchant.
	settleFile map[string]string
	settles    int
	lastKey    string
}

func (m *merger) total(merchant string) *Totals {
	t := m.totals[merchant]
	if t == nil {
		t = &Totals{MerchantID: merchant}
		m.totals[merchant] = t
	}
	return t
}

func (m *merger) fileTotals(row statements.TradeRow) {
	t := m.total(row.HuifuID)
	if row.TransStat == nkp.StatSuccess {
		if row.Refund() {
			t.FileRefundCount++
			t.FileRefundFen += row.TransAmt
		} else {
			t.FilePayCount++
			t.FilePayFen += row.TransAmt
		}
	}
	t.FileFeeFen += row.FeeAmt
	t.FileSettleFen += row.SettleAmt
}

func (m *merger) ledgerTotals(e Entry) {
	if e.Status != store.StatusSucceeded {
		return
	}
	t := m.total(e.MerchantID)
	if e.Kind == "refund" {
		t.LedgerRefundCount++
		t.LedgerRefundFen += e.Amount
	} else {
		t.LedgerPayCount++
		t.LedgerPayFen += e.Amount
	}
}

// merge walks the sorted bill and the ledger together.
func (m *merger) merge(sorted *sortedStream) error {
	next := func() (*fileRec, error) {
		rec, err := sorted.Next()
		if err != nil || rec == nil {
			return nil, err
		}
		f := decodeRec(rec)
		return &f, nil
	}
	cur, err := next()
	if err != nil {
		return err
	}
	var prev *fileRec
	// drain consumes the file records before k (all of them when not
	// bounded), which the ledger did not give in the window.
	drain := func(k string, bounded bool) error {
		for cur != nil && (!bounded || cur.key < k) {
			if prev != nil && prev.key == cur.key {
				if err := m.sink.add(Difference{Kind: MalformedRow, MerchantID: cur.huifu, ReqDate: cur.reqDate, ReqSeqID: cur.reqSeq,
					File: cur.file, Line: cur.line, Reason: "the serial appears more than once in the bill"}); err != nil {
					return err
				}
			} else if err := m.fileOnly(*cur); err != nil {
				return err
			}
			prev = cur
			if cur, err = next(); err != nil {
				return err
			}
		}
		return nil
	}
	merchant := m.rep.MerchantID
	err = m.r.ledger.Entries(m.ctx, merchant, m.dayStart.Add(-m.r.cfg.Slack), m.dayEnd.Add(m.r.cfg.Slack), func(e Entry) error {
		k := key(e.MerchantID, e.ReqDate, e.ReqSeqID)
		if k <= m.lastKey && m.lastKey != "" {
			return fmt.Errorf("the ledger is not in serial order (%q after %q)", e.ReqSeqID, m.lastKey)
		}
		m.lastKey = k
		if err := drain(k, true); err != nil {
			return err
		}
		if cur != nil && cur.key == k {
			if err := m.both(*cur, e); err != nil {
				return err
			}
			prev = cur
			var err error
			if cur, err = next(); err != nil {
				return err
			}
			// Later records with the same serial are duplicates.
			return drain(k+"\x00", true)
		}
		return m.ledgerOnly(e)
	})
	if err != nil {
		return fmt.Errorf("read the ledger: %w", err)
	}
	return drain("", false)
}

// finalMatches reports whether a bill state and a ledger state agree.
func finalMatches(stat string, s store.Status) bool {
	switch stat {
	case nkp.StatSuccess:
		return s == store.StatusSucceeded
	case nkp.StatFailure:
		return s == store.StatusFailed || s == store.StatusClosed
	}
	return !s.Final()
}

// both compares a bill record with the ledger's record of the same
// serial, and counts the ledger's record in the totals (in the state a
// settlement left it in).
func (m *merger) both(f fileRec, e Entry) error {
	m.rep.LedgerRecords++
	defer func() { m.ledgerTotals(e) }()
	base := Difference{Object: e.Kind, MerchantID: e.MerchantID, ReqDate: e.ReqDate, ReqSeqID: e.ReqSeqID, NkpSeqID: e.NkpSeqID,
		LedgerID: e.ID, LedgerStatus: e.Status, LedgerAmountFen: e.Amount, File: f.file, Line: f.line}
	if f.bad {
		d := base
		d.Kind, d.Reason = MalformedRow, f.reason
		return m.sink.add(d)
	}
	base.FileStat, base.FileAmountFen = f.stat, f.amount
	if f.nkpSeq != "" {
		base.NkpSeqID = f.nkpSeq
	}
	if f.object() != e.Kind {
		d := base
		d.Kind, d.Reason = StateDiffers, fmt.Sprintf("the bill has a %s, the sidecar a %s with this serial", f.object(), e.Kind)
		return m.sink.add(d)
	}
	if f.amount != e.Amount {
		d := base
		d.Kind = AmountDiffers
		d.Reason = fmt.Sprintf("the bill says %s yuan, the sidecar %s yuan", f.amount.Yuan(), e.Amount.Yuan())
		if err := m.sink.add(d); err != nil {
			return err
		}
	}
	if !finalMatches(f.stat, e.Status) {
		d := base
		d.Kind = StateDiffers
		d.Reason = fmt.Sprintf("the bill says %s, the sidecar %s", f.stat, e.Status)
		if !e.Status.Final() && (f.stat == nkp.StatSuccess || f.stat == nkp.StatFailure) {
			d.Reason = fmt.Sprintf("the bill says %s; the sidecar has no final result (%s)", f.stat, e.Status)
			d.Settleable = true
			d.Settlement = m.settle(e)
			if d.Settlement != nil && d.Settlement.Outcome == "settled" {
				e.Status = d.Settlement.Status
			}
		}
		if err := m.sink.add(d); err != nil {
			return err
		}
	}
	if e.Kind == "refund" {
		return m.noteRefund(f, &e)
	}
	return nil
}

// settle asks the Settler to settle e, within the run's budget.
func (m *merger) settle(e Entry) *Settlement {
	if m.r.settler == nil {
		return nil
	}
	if m.settles >= m.r.cfg.MaxSettle {
		return &Settlement{Outcome: "failed", Status: e.Status, Error: "not tried: the run's settlement budget is spent"}
	}
	m.settles++
	s := m.r.settler.Settle(m.ctx, e)
	return &s
}

// fileOnly handles a bill record the ledger did not give in the window:
// looked up by serial, compared when found, missing otherwise.
func (m *merger) fileOnly(f fileRec) error {
	e, found, err := m.r.ledger.Lookup(m.ctx, f.huifu, f.reqDate, f.reqSeq)
	if err != nil {
		return fmt.Errorf("look up %s: %w", f.reqSeq, err)
	}
	if found {
		return m.both(f, e)
	}
	d := Difference{MerchantID: f.huifu, ReqDate: f.reqDate, ReqSeqID: f.reqSeq, File: f.file, Line: f.line}
	if f.bad {
		d.Kind, d.Reason = MalformedRow, f.reason
		return m.sink.add(d)
	}
	d.Object, d.NkpSeqID, d.FileStat, d.FileAmountFen = f.object(), f.nkpSeq, f.stat, f.amount
	d.Kind, d.Reason = MissingInLedger, fmt.Sprintf("the bill has a %s of %s yuan (%s) the sidecar never recorded", f.object(), f.amount.Yuan(), f.stat)
	if err := m.sink.add(d); err != nil {
		return err
	}
	if f.object() == "refund" {
		return m.noteRefund(f, nil)
	}
	return nil
}

// ledgerOnly handles a ledger record the bill lacks: a difference when it
// ended, by the upstream's clock, on the day.
func (m *merger) ledgerOnly(e Entry) error {
	if !e.Status.Final() || e.Status == store.StatusClosed || e.EndTime.Before(m.dayStart) || !e.EndTime.Before(m.dayEnd) {
		return nil
	}
	m.rep.LedgerRecords++
	m.ledgerTotals(e)
	return m.sink.add(Difference{Kind: MissingInFile, Object: e.Kind, MerchantID: e.MerchantID, ReqDate: e.ReqDate, ReqSeqID: e.ReqSeqID,
		NkpSeqID: e.NkpSeqID, LedgerID: e.ID, LedgerStatus: e.Status, LedgerAmountFen: e.Amount,
		Reason: fmt.Sprintf("the sidecar has a %s %s of %s yuan that ended %s; the bill lacks it", e.Status, e.Kind, e.Amount.Yuan(),
			e.EndTime.In(nkp.Beijing).Format("2006-01-02 15:04:05"))})
}

// noteRefund records a refund whose payment must be checked: one the bill
// says succeeded that the ledger does not count, or one whose payment the
// ledger already counts as refunded beyond its amount.
func (m *merger) noteRefund(f fileRec, e *Entry) error {
	extra := nkp.Fen(0)
	if f.stat == nkp.StatSuccess && (e == nil || e.Status != store.StatusSucceeded) {
		extra = f.amount
	}
	over := e != nil && e.PaymentRefunded > e.PaymentAmount
	if extra == 0 && !over {
		return nil
	}
	orgDate, orgSeq := f.orgDate, f.orgSeq
	if e != nil {
		orgDate, orgSeq = e.PaymentReqDate, e.PaymentReqSeqID
	}
	if orgSeq == "" {
		return nil
	}
	return m.refunds.Add([]string{key(f.huifu, orgDate, orgSeq), strconv.FormatInt(int64(extra), 10), f.reqSeq})
}

// checkRefunds reports payments refunded beyond their amount, counting
// the ledger's succeeded refunds and those only the bill has.
func (m *merger) checkRefunds() error {
	sorted, err := m.refunds.Sorted()
	if err != nil {
		return err
	}
	defer sorted.Close()
	var group []string
	var groupKey string
	var extra nkp.Fen
	flush := func() error {
		if groupKey == "" {
			return nil
		}
		parts := strings.SplitN(groupKey, "\x00", 3)
		p, found, err := m.r.ledger.Lookup(m.ctx, parts[0], parts[1], parts[2])
		if err != nil {
			return fmt.Errorf("look up payment %s: %w", parts[2], err)
		}
		if !found || p.Kind != "payment" {
			return nil
		}
		if total := p.Refunded + extra; total > p.Amount {
			return m.sink.add(Difference{Kind: RefundExceedsPayment, Object: "payment", MerchantID: p.MerchantID, ReqDate: p.ReqDate,
				ReqSeqID: p.ReqSeqID, NkpSeqID: p.NkpSeqID, LedgerID: p.ID, LedgerStatus: p.Status, LedgerAmountFen: p.Amount,
				Reason: fmt.Sprintf("refunds add up to %s yuan, the payment is %s yuan (refunds %s)", total.Yuan(), p.Amount.Yuan(), strings.Join(group, ", "))})
		}
		return nil
	}
	for {
		rec, err := sorted.Next()
		if err != nil {
			return err
		}
		if rec == nil {
			return flush()
		}
		if rec[0] != groupKey {
			if err := flush(); err != nil {
				return err
			}
			groupKey, group, extra = rec[0], nil, 0
		}
		amt, _ := strconv.ParseInt(rec[1], 10, 64)
		extra += nkp.Fen(amt)
		if len(group) < 20 {
			group = append(group, rec[2])
		}
	}
}

// checkSettlement compares each merchant's settlement bill with its trade
// bill, and puts the totals in the report.
func (m *merger) checkSettlement(date string, fetch fetchFunc) error {
	files, err := fetch(m.ctx, nkp.BillSettle, date)
	if err != nil {
		return fmt.Errorf("settlement bill: %w", err)
	}
	for _, f := range files {
		m.rep.Files = append(m.rep.Files, f.Name)
		rd, err := statements.Open(f.Path, nkp.BillSettle)
		if err != nil {
			var fe *statements.FileError
			if errors.As(err, &fe) {
				if err := m.sink.add(Difference{Kind: MalformedRow, File: f.Name, Reason: fe.Reason}); err != nil {
					return err
				}
				continue
			}
			return err
		}
		for {
			row, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var re *statements.RowError
			if errors.As(err, &re) {
				if err := m.sink.add(Difference{Kind: MalformedRow, File: f.Name, Line: re.Line, Reason: re.Reason}); err != nil {
					_ = rd.Close()
					return err
				}
				continue
			}
			if err != nil {
				_ = rd.Close()
				return err
			}
			s := row.(statements.SettleRow)
			if s.SettleDate != date {
				continue
			}
			t := m.total(s.HuifuID)
			t.Settle = &s
			m.settleFile[s.HuifuID] = f.Name
		}
		_ = rd.Close()
	}
	merchants := make([]string, 0, len(m.totals))
	for k := range m.totals {
		merchants = append(merchants, k)
	}
	sort.Strings(merchants)
	for _, id := range merchants {
		t := m.totals[id]
		m.rep.Totals = append(m.rep.Totals, *t)
		if m.malformedIn[id] || m.malformedIn[""] {
			continue // reported already; the sums cannot be exact
		}
		s := t.Settle
		if s == nil {
			if t.FilePayCount+t.FileRefundCount == 0 {
				continue
			}
			if err := m.sink.add(Difference{Kind: SettlementDiffers, MerchantID: id, Reason: "the settlement bill has no row for a merchant with trades"}); err != nil {
				return err
			}
			continue
		}
		var probs []string
		check := func(name string, file, settle nkp.Fen) {
			if file != settle {
				probs = append(probs, fmt.Sprintf("%s %s in the trade bill, %s in the settlement", name, file.Yuan(), settle.Yuan()))
			}
		}
		check("payments", t.FilePayFen, s.PayAmt)
		check("refunds", t.FileRefundFen, s.RefundAmt)
		check("fees", t.FileFeeFen, s.FeeAmt)
		check("settlement", t.FileSettleFen, s.SettleAmt)
		if t.FilePayCount != s.PayCount || t.FileRefundCount != s.RefundCount {
			probs = append(probs, fmt.Sprintf("counts %d/%d in the trade bill, %d/%d in the settlement", t.FilePayCount, t.FileRefundCount, s.PayCount, s.RefundCount))
		}
		if len(probs) > 0 {
			if err := m.sink.add(Difference{Kind: SettlementDiffers, MerchantID: id, File: m.settleFile[id], Line: s.Line, Reason: strings.Join(probs, "; ")}); err != nil {
				return err
			}
		}
	}
	return nil
}
