package statements

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Row is one parsed record of a statement file: a TradeRow, SettleRow,
// SplitRow or WithdrawalRow.
type Row interface {
	// LineNo is the record's line in its file, 1 for the header.
	LineNo() int
}

// TradeRow is one transaction of a trade bill (TRADE_BILL or
// TRADE_BILL_MONTH): a payment or, when TransType is TRANS_REFUND, a
// refund. Amounts are fen; EndTime is Beijing time.
type TradeRow struct {
	Line         int       `json:"line"`
	TransDate    string    `json:"trans_date"`
	EndTime      time.Time `json:"end_time"`
	HuifuID      string    `json:"huifu_id"`
	ReqDate      string    `json:"req_date"`
	ReqSeqID     string    `json:"req_seq_id"`
	NkpSeqID     string    `json:"nkp_seq_id"`
	TransType    string    `json:"trans_type"`
	TransStat    string    `json:"trans_stat"`
	TransAmt     nkp.Fen   `json:"trans_amt_fen"`
	FeeAmt       nkp.Fen   `json:"fee_amt_fen"`
	SettleAmt    nkp.Fen   `json:"settle_amt_fen"`
	OrgReqDate   string    `json:"org_req_date,omitempty"`
	OrgReqSeqID  string    `json:"org_req_seq_id,omitempty"`
	OrgNkpSeqID  string    `json:"org_nkp_seq_id,omitempty"`
	PartyOrderID string    `json:"party_order_id,omitempty"`
	OutTransID   string    `json:"out_trans_id,omitempty"`
}

// LineNo implements Row.
func (r TradeRow) LineNo() int { return r.Line }

// Refund reports whether the row is a refund.
func (r TradeRow) Refund() bool { return r.TransType == nkp.TransRefund }

// SettleRow is one day of a merchant's settlement (SETTLE_BILL or
// SETTLE_BILL_MONTH).
type SettleRow struct {
	Line        int     `json:"line"`
	SettleDate  string  `json:"settle_date"`
	HuifuID     string  `json:"huifu_id"`
	PayCount    int     `json:"pay_count"`
	PayAmt      nkp.Fen `json:"pay_amt_fen"`
	RefundCount int     `json:"refund_count"`
	RefundAmt   nkp.Fen `json:"refund_amt_fen"`
	FeeAmt      nkp.Fen `json:"fee_amt_fen"`
	SettleAmt   nkp.Fen `json:"settle_amt_fen"`
}

// LineNo implements Row.
func (r SettleRow) LineNo() int { return r.Line }

// SplitRow is one share of a split payment (SPLIT_BILL).
type SplitRow struct {
	Line       int     `json:"line"`
	SplitDate  string  `json:"split_date"`
	HuifuID    string  `json:"huifu_id"`
	ReqDate    string  `json:"req_date"`
	ReqSeqID   string  `json:"req_seq_id"`
	NkpSeqID   string  `json:"nkp_seq_id"`
	DivHuifuID string  `json:"div_huifu_id"`
	DivAmt     nkp.Fen `json:"div_amt_fen"`
	TransStat  string  `json:"trans_stat"`
}

// LineNo implements Row.
func (r SplitRow) LineNo() int { return r.Line }

// WithdrawalRow is one payout to the merchant's bank account
// (WITHDRAWAL_BILL).
type WithdrawalRow struct {
	Line         int       `json:"line"`
	WithdrawDate string    `json:"withdraw_date"`
	Time         time.Time `json:"withdraw_time"`
	HuifuID      string    `json:"huifu_id"`
	ReqSeqID     string    `json:"req_seq_id"`
	NkpSeqID     string    `json:"nkp_seq_id"`
	CashAmt      nkp.Fen   `json:"cash_amt_fen"`
	FeeAmt       nkp.Fen   `json:"fee_amt_fen"`
	RealAmt      nkp.Fen   `json:"real_amt_fen"`
	TransStat    string    `json:"trans_stat"`
	BankAcct     string    `json:"bank_acct,omitempty"`
}

// LineNo implements Row.
func (r WithdrawalRow) LineNo() int { return r.Line }

// RowError reports a record that could not be read. It never stops the
// reading of the file: Next goes on with the following record.
type RowError struct {
	// File is the file's name, Line the record's line (1 for the header).
	File string `json:"file"`
	Line int    `json:"line"`
	// Reason says what is wrong.
	Reason string `json:"reason"`
	// HuifuID, ReqDate and ReqSeqID identify the transaction when those
	// cells could be read, so that a reconciliation can name it.
	HuifuID  string `json:"huifu_id,omitempty"`
	ReqDate  string `json:"req_date,omitempty"`
	ReqSeqID string `json:"req_seq_id,omitempty"`
}

// Error implements error.
func (e *RowError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason) }

// FileError reports a file that cannot be read at all: no header, a
// missing column, an I/O error. Nothing of the file is used.
type FileError struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
	Err    error  `json:"-"`
}

// Error implements error.
func (e *FileError) Error() string { return e.File + ": " + e.Reason }

// Unwrap returns the underlying error, if any.
func (e *FileError) Unwrap() error { return e.Err }

// columns maps the field names of the files to the Chinese names the
// aggregator uses for them, so that a header of either kind, or of both
// ("交易金额(trans_amt)"), is understood. DouGong's serial names are read
// as NKP's.
var columns = map[string]string{
	"交易日期": "trans_date", "交易时间": "trans_time", "商户号": "huifu_id", "请求日期": "req_date",
	"请求流水号": "req_seq_id", "全局流水号": "nkp_seq_id", "交易类型": "trans_type", "交易状态": "trans_stat",
	"交易金额": "trans_amt", "手续费": "fee_amt", "结算金额": "settle_amt", "原请求日期": "org_req_date",
	"原请求流水号": "org_req_seq_id", "原全局流水号": "org_nkp_seq_id", "用户订单号": "party_order_id",
	"渠道交易号": "out_trans_id", "结算日期": "settle_date", "支付笔数": "pay_count", "支付金额": "pay_amt",
	"退款笔数": "refund_count", "退款金额": "refund_amt", "分账日期": "split_date", "分账接收方": "div_huifu_id",
	"分账金额": "div_amt", "分账状态": "trans_stat", "出金日期": "withdraw_date", "出金时间": "withdraw_time",
	"出金金额": "cash_amt", "到账金额": "real_amt", "出金状态": "trans_stat", "银行账号": "bank_acct",
	"总笔数": "total_count", "hf_seq_id": "nkp_seq_id", "org_hf_seq_id": "org_nkp_seq_id",
}

// columnKey returns the field name a header cell stands for.
func columnKey(cell string) string {
	cell = cleanCell(cell)
	if i := strings.LastIndexByte(cell, '('); i >= 0 && strings.HasSuffix(cell, ")") {
		cell = cell[i+1 : len(cell)-1]
	}
	if k, ok := columns[cell]; ok {
		return k
	}
	return cell
}

// cleanCell trims the white space, tabs and leading backquote some
// aggregators add so that spreadsheets keep long numbers as text.
func cleanCell(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "`")
	return strings.TrimSpace(s)
}

// required lists the columns each kind of file must have.
var required = map[string][]string{
	nkp.BillTrade:      {"trans_date", "trans_time", "huifu_id", "req_date", "req_seq_id", "nkp_seq_id", "trans_type", "trans_stat", "trans_amt", "fee_amt", "settle_amt", "org_req_date", "org_req_seq_id"},
	nkp.BillSettle:     {"settle_date", "huifu_id", "pay_count", "pay_amt", "refund_count", "refund_amt", "fee_amt", "settle_amt"},
	nkp.BillSplit:      {"split_date", "huifu_id", "req_date", "req_seq_id", "div_huifu_id", "div_amt", "trans_stat"},
	nkp.BillWithdrawal: {"withdraw_date", "huifu_id", "req_seq_id", "cash_amt", "trans_stat"},
}

// Kind returns the kind of rows a bill type holds: nkp.BillTrade for both
// trade bills, nkp.BillSettle for both settlement bills, or the bill type
// itself.
func Kind(billType string) string {
	switch billType {
	case nkp.BillTradeMonth:
		return nkp.BillTrade
	case nkp.BillSettleMon:
		return nkp.BillSettle
	}
	return billType
}

// record is one CSV record with its named cells.
type record struct {
	file   string
	line   int
	fields []string
	cols   map[string]int
	err    *RowError
}

func (r *record) get(key string) string {
	i, ok := r.cols[key]
	if !ok || i >= len(r.fields) {
		return ""
	}
	return cleanCell(r.fields[i])
}

func (r *record) fail(format string, args ...any) {
	if r.err == nil {
		r.err = &RowError{File: r.file, Line: r.line, Reason: fmt.Sprintf(format, args...)}
	}
}

func (r *record) need(key string) string {
	v := r.get(key)
	if v == "" {
		r.fail("%s is empty", key)
	}
	return v
}

func (r *record) date(key string, required bool) string {
	v := r.get(key)
	if v == "" {
		if required {
			r.fail("%s is empty", key)
		}
		return ""
	}
	if _, err := time.ParseInLocation(nkp.DateLayout, v, nkp.Beijing); err != nil || len(v) != 8 {
		r.fail("%s %q is not a yyyyMMdd date", key, v)
	}
	return v
}

// amount reads a yuan amount through nkp.ParseYuan, the one place yuan
// becomes fen.
func (r *record) amount(key string, required bool) nkp.Fen {
	v := r.get(key)
	if v == "" {
		if required {
			r.fail("%s is empty", key)
		}
		return 0
	}
	f, err := nkp.ParseYuan(v)
	if err != nil {
		r.fail("%s %q is not an amount in yuan", key, v)
	}
	return f
}

func (r *record) count(key string) int {
	v := r.get(key)
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		r.fail("%s %q is not a count", key, v)
	}
	return n
}

func (r *record) stat(key string) string {
	v := r.need(key)
	switch v {
	case "", nkp.StatSuccess, nkp.StatFailure, nkp.StatProcessing, nkp.StatInitial:
	default:
		r.fail("%s %q is not one of S, F, P, I", key, v)
	}
	return v
}

// clock reads a date column and an HHmmss time column as Beijing time.
func (r *record) clock(dateKey, timeKey string) time.Time {
	d, t := r.get(dateKey), r.get(timeKey)
	if d == "" || t == "" {
		return time.Time{}
	}
	v, err := time.ParseInLocation(nkp.TimestampLayout, d+t, nkp.Beijing)
	if err != nil || len(t) != 6 {
		r.fail("%s %q is not an HHmmss time", timeKey, t)
		return time.Time{}
	}
	return v
}

func parseTrade(r *record) TradeRow {
	row := TradeRow{
		Line: r.line, HuifuID: r.need("huifu_id"), ReqDate: r.date("req_date", true), ReqSeqID: r.need("req_seq_id"),
		NkpSeqID: r.get("nkp_seq_id"), TransType: r.need("trans_type"), TransStat: r.stat("trans_stat"),
		TransDate: r.date("trans_date", true), OrgReqDate: r.date("org_req_date", false), OrgReqSeqID: r.get("org_req_seq_id"),
		OrgNkpSeqID: r.get("org_nkp_seq_id"), PartyOrderID: r.get("party_order_id"), OutTransID: r.get("out_trans_id"),
	}
	row.EndTime = r.clock("trans_date", "trans_time")
	row.TransAmt = r.amount("trans_amt", true)
	row.FeeAmt = r.amount("fee_amt", false)
	row.SettleAmt = r.amount("settle_amt", false)
	if r.err == nil && row.TransAmt <= 0 {
		r.fail("trans_amt %s is not positive", row.TransAmt.Yuan())
	}
	if r.err == nil && row.FeeAmt < 0 {
		r.fail("fee_amt %s is negative", row.FeeAmt.Yuan())
	}
	if r.err == nil && row.Refund() && row.OrgReqSeqID == "" && row.OrgNkpSeqID == "" {
		r.fail("a refund names no original transaction (org_req_seq_id or org_nkp_seq_id)")
	}
	if r.err != nil {
		r.err.HuifuID, r.err.ReqSeqID = r.get("huifu_id"), r.get("req_seq_id")
		if d := r.get("req_date"); len(d) == 8 {
			r.err.ReqDate = d
		}
	}
	return row
}

func parseSettle(r *record) SettleRow {
	return SettleRow{
		Line: r.line, SettleDate: r.date("settle_date", true), HuifuID: r.need("huifu_id"),
		PayCount: r.count("pay_count"), PayAmt: r.amount("pay_amt", true), RefundCount: r.count("refund_count"),
		RefundAmt: r.amount("refund_amt", true), FeeAmt: r.amount("fee_amt", true), SettleAmt: r.amount("settle_amt", true),
	}
}

func parseSplit(r *record) SplitRow {
	row := SplitRow{
		Line: r.line, SplitDate: r.date("split_date", true), HuifuID: r.need("huifu_id"), ReqDate: r.date("req_date", true),
		ReqSeqID: r.need("req_seq_id"), NkpSeqID: r.get("nkp_seq_id"), DivHuifuID: r.need("div_huifu_id"),
		DivAmt: r.amount("div_amt", true), TransStat: r.stat("trans_stat"),
	}
	if r.err == nil && row.DivAmt <= 0 {
		r.fail("div_amt %s is not positive", row.DivAmt.Yuan())
	}
	return row
}

func parseWithdrawal(r *record) WithdrawalRow {
	row := WithdrawalRow{
		Line: r.line, WithdrawDate: r.date("withdraw_date", true), HuifuID: r.need("huifu_id"), ReqSeqID: r.need("req_seq_id"),
		NkpSeqID: r.get("nkp_seq_id"), CashAmt: r.amount("cash_amt", true), FeeAmt: r.amount("fee_amt", false),
		RealAmt: r.amount("real_amt", false), TransStat: r.stat("trans_stat"), BankAcct: r.get("bank_acct"),
	}
	row.Time = r.clock("withdraw_date", "withdraw_time")
	return row
}

// Summary is the summary section at the end of a file, keyed by field
// name: counts as written, amounts in fen.
type Summary struct {
	Line    int                `json:"line"`
	Counts  map[string]int     `json:"counts"`
	Amounts map[string]nkp.Fen `json:"amounts_fen"`
}

// totals accumulates what the rows of a file add up to, to check the
// summary.
type totals struct {
	rows, malformed int
	counts          map[string]int
	amounts         map[string]nkp.Fen
}

func (t *totals) add(row Row) {
	t.rows++
	switch r := row.(type) {
	case TradeRow:
		if r.TransStat == nkp.StatSuccess {
			if r.Refund() {
				t.counts["refund_count"]++
				t.amounts["refund_amt"] += r.TransAmt
			} else {
				t.counts["pay_count"]++
				t.amounts["pay_amt"] += r.TransAmt
			}
		}
		t.amounts["fee_amt"] += r.FeeAmt
		t.amounts["settle_amt"] += r.SettleAmt
	case SettleRow:
		t.amounts["pay_amt"] += r.PayAmt
		t.amounts["refund_amt"] += r.RefundAmt
		t.amounts["fee_amt"] += r.FeeAmt
		t.amounts["settle_amt"] += r.SettleAmt
	case SplitRow:
		t.amounts["div_amt"] += r.DivAmt
	case WithdrawalRow:
		t.amounts["cash_amt"] += r.CashAmt
		t.amounts["fee_amt"] += r.FeeAmt
		t.amounts["real_amt"] += r.RealAmt
	}
}

// Reader reads a statement file record by record, in constant memory.
// Next returns each row, or a *RowError for a record it cannot read (and
// goes on with the next), or io.EOF at the end. When the rows do not add up
// to the file's summary, the last thing Next returns before io.EOF is a
// *RowError at the summary's line.
type Reader struct {
	name  string
	kind  string
	f     io.Closer
	cr    *csv.Reader
	base  int64 // bytes before cr's input
	lines int   // lines before cr's input
	cols  map[string]int
	width int
	parse func(*record) Row

	tot      totals
	summary  *Summary
	sumCols  []string
	inSum    bool
	done     bool
	checked  bool
	lastLine int
}

// Open opens the statement file at path, of the given bill type, and reads
// its header. A file whose header is missing or lacks a required column
// is a *FileError.
func Open(path, billType string) (*Reader, error) {
	return OpenAt(path, billType, Cursor{})
}

// Cursor is a position in a statement file just after a record, for
// reading it page by page; the zero Cursor is the first record.
type Cursor struct {
	// Offset is the byte offset, Line the number of lines before it.
	Offset int64 `json:"offset"`
	Line   int   `json:"line"`
}

// Cursor returns the position after the last record Next returned.
func (r *Reader) Cursor() Cursor {
	return Cursor{Offset: r.base + r.cr.InputOffset(), Line: r.lastLine}
}

// OpenAt opens the file like Open and goes on reading at c, a cursor from
// an earlier Reader of the same file. Summary checks cover only the
// records read from c on, so they are made only when c is the zero Cursor.
func OpenAt(path, billType string, c Cursor) (*Reader, error) {
	name := baseName(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{File: name, Reason: "cannot open: " + errors.Unwrap(err).Error(), Err: err}
	}
	r, err := newReader(f, f, name, billType)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if c.Offset > 0 {
		if _, err := f.Seek(c.Offset, io.SeekStart); err != nil {
			_ = f.Close()
			return nil, &FileError{File: name, Reason: "cannot seek", Err: err}
		}
		r.cr = newCSV(bufio.NewReader(f))
		r.base, r.lines, r.lastLine = c.Offset, c.Line, c.Line
		r.checked = true // a partial read cannot check the summary
	}
	return r, nil
}

// NewReader reads a statement of the given bill type from src, named name
// in errors, and reads its header.
func NewReader(src io.Reader, name, billType string) (*Reader, error) {
	return newReader(src, nil, name, billType)
}

func newCSV(src io.Reader) *csv.Reader {
	cr := csv.NewReader(src)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	return cr
}

func newReader(src io.Reader, closer io.Closer, name, billType string) (*Reader, error) {
	kind := Kind(billType)
	r := &Reader{name: name, kind: kind, f: closer, cols: map[string]int{}}
	switch kind {
	case nkp.BillTrade:
		r.parse = func(rec *record) Row { return parseTrade(rec) }
	case nkp.BillSettle:
		r.parse = func(rec *record) Row { return parseSettle(rec) }
	case nkp.BillSplit:
		r.parse = func(rec *record) Row { return parseSplit(rec) }
	case nkp.BillWithdrawal:
		r.parse = func(rec *record) Row { return parseWithdrawal(rec) }
	default:
		return nil, &FileError{File: name, Reason: fmt.Sprintf("unknown bill type %q", billType)}
	}
	br := bufio.NewReader(src)
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
		r.base = 3
	}
	r.cr = newCSV(br)
	header, err := r.cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FileError{File: name, Reason: "the file is empty: no header"}
		}
		return nil, &FileError{File: name, Reason: "cannot read the header: " + err.Error(), Err: err}
	}
	for i, h := range header {
		r.cols[columnKey(h)] = i
	}
	r.width = len(header)
	r.lastLine = 1
	var missing []string
	for _, k := range required[kind] {
		if _, ok := r.cols[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, &FileError{File: name, Reason: "the header lacks " + strings.Join(missing, ", ")}
	}
	r.tot = totals{counts: map[string]int{}, amounts: map[string]nkp.Fen{}}
	return r, nil
}

// Name returns the file's name.
func (r *Reader) Name() string { return r.name }

// Summary returns the file's summary section, once Next has reached it;
// nil when the file has none.
func (r *Reader) Summary() *Summary { return r.summary }

// Close closes the file opened by Open.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// Next returns the next row, a *RowError, or io.EOF. Any other error is a
// *FileError: reading cannot go on.
func (r *Reader) Next() (Row, error) {
	for {
		if r.done {
			if !r.checked {
				r.checked = true
				if err := r.checkSummary(); err != nil {
					return nil, err
				}
			}
			return nil, io.EOF
		}
		fields, err := r.cr.Read()
		line := r.lines
		// A failed Read returns no fields, and FieldPos panics without
		// any: the line of a parse error comes from the error.
		if len(fields) > 0 {
			l, _ := r.cr.FieldPos(0)
			line += l
		}
		var pe *csv.ParseError
		switch {
		case errors.Is(err, io.EOF):
			r.done = true
			continue
		case errors.As(err, &pe):
			r.lastLine = r.lines + pe.Line
			r.tot.malformed++
			return nil, &RowError{File: r.name, Line: r.lines + pe.StartLine, Reason: "not valid CSV: " + pe.Err.Error()}
		case err != nil:
			return nil, &FileError{File: r.name, Reason: "read failed", Err: err}
		}
		r.lastLine = line
		if len(fields) == 1 && strings.TrimSpace(fields[0]) == "" {
			continue
		}
		if columnKey(fields[0]) == "total_count" && !r.inSum {
			r.inSum = true
			r.sumCols = make([]string, len(fields))
			for i, f := range fields {
				r.sumCols[i] = columnKey(f)
			}
			continue
		}
		if r.inSum {
			if r.summary != nil {
				return nil, &RowError{File: r.name, Line: line, Reason: "a record after the summary"}
			}
			if err := r.readSummary(fields, line); err != nil {
				return nil, err
			}
			continue
		}
		if len(fields) != r.width {
			r.tot.malformed++
			rec := &record{file: r.name, line: line, fields: fields, cols: r.cols}
			e := &RowError{File: r.name, Line: line, Reason: fmt.Sprintf("%d fields, the header has %d", len(fields), r.width)}
			if r.kind == nkp.BillTrade && len(fields) > r.cols["req_seq_id"] {
				e.HuifuID, e.ReqSeqID = rec.get("huifu_id"), rec.get("req_seq_id")
				if d := rec.get("req_date"); len(d) == 8 {
					e.ReqDate = d
				}
			}
			return nil, e
		}
		rec := &record{file: r.name, line: line, fields: fields, cols: r.cols}
		row := r.parse(rec)
		if rec.err != nil {
			r.tot.malformed++
			return nil, rec.err
		}
		r.tot.add(row)
		return row, nil
	}
}

func (r *Reader) readSummary(fields []string, line int) error {
	s := &Summary{Line: line, Counts: map[string]int{}, Amounts: map[string]nkp.Fen{}}
	r.summary = s
	if len(fields) != len(r.sumCols) {
		return &RowError{File: r.name, Line: line, Reason: fmt.Sprintf("the summary has %d fields, its header %d", len(fields), len(r.sumCols))}
	}
	for i, k := range r.sumCols {
		v := cleanCell(fields[i])
		if strings.HasSuffix(k, "_count") {
			n, err := strconv.Atoi(v)
			if err != nil {
				return &RowError{File: r.name, Line: line, Reason: fmt.Sprintf("summary %s %q is not a count", k, v)}
			}
			s.Counts[k] = n
			continue
		}
		f, err := nkp.ParseYuan(v)
		if err != nil {
			return &RowError{File: r.name, Line: line, Reason: fmt.Sprintf("summary %s %q is not an amount in yuan", k, v)}
		}
		s.Amounts[k] = f
	}
	return nil
}

// checkSummary compares the summary with the rows. The count always
// covers every record, readable or not; the amounts can only be checked
// when every record was read.
func (r *Reader) checkSummary() error {
	s := r.summary
	if s == nil {
		return nil
	}
	var probs []string
	if n, ok := s.Counts["total_count"]; ok && n != r.tot.rows+r.tot.malformed {
		probs = append(probs, fmt.Sprintf("total_count %d, the file has %d records", n, r.tot.rows+r.tot.malformed))
	}
	if r.tot.malformed == 0 {
		for _, k := range []string{"pay_count", "refund_count"} {
			if n, ok := s.Counts[k]; ok && r.kind == nkp.BillTrade && n != r.tot.counts[k] {
				probs = append(probs, fmt.Sprintf("%s %d, the records have %d", k, n, r.tot.counts[k]))
			}
		}
		for k, v := range s.Amounts {
			if got := r.tot.amounts[k]; got != v {
				probs = append(probs, fmt.Sprintf("%s %s, the records add up to %s", k, v.Yuan(), got.Yuan()))
			}
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return &RowError{File: r.name, Line: s.Line, Reason: "the summary does not match the records: " + strings.Join(probs, "; ")}
}

func baseName(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[i+1:]
	}
	return path
}
