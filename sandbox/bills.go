package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// isMonthBill reports whether a bill type covers a whole month.
func isMonthBill(bill string) bool {
	return bill == nkp.BillTradeMonth || bill == nkp.BillSettleMon
}

// BillFileName is the file_name of the reconciliation file of one merchant,
// bill type and file_date (yyyyMMdd, or yyyyMM for monthly bills).
func BillFileName(huifu, bill, fileDate string) string {
	return huifu + "_" + bill + "_" + fileDate + ".csv"
}

// billPeriod parses file_date for a bill type: a day for daily bills; a
// month (yyyyMM, or any day of it) for monthly ones. It returns the
// normalized date and the first and last days covered.
func billPeriod(bill, fileDate string) (string, time.Time, time.Time, error) {
	if isMonthBill(bill) {
		v := fileDate
		if len(v) == 8 {
			v = v[:6]
		}
		m, err := time.ParseInLocation("200601", v, cst())
		if err != nil || len(v) != 6 {
			return "", time.Time{}, time.Time{}, fmt.Errorf("file_date must be yyyyMM or yyyyMMdd for %s", bill)
		}
		return v, m, m.AddDate(0, 1, -1), nil
	}
	d, err := time.ParseInLocation(nkp.DateLayout, fileDate, cst())
	if err != nil || len(fileDate) != 8 {
		return "", time.Time{}, time.Time{}, fmt.Errorf("file_date must be a date in yyyyMMdd form")
	}
	return fileDate, d, d, nil
}

// fileQuery answers where the reconciliation file of a bill type and date
// is. Files are generated from the ledger when downloaded; a date later
// than today is refused. A file held back by a BillPending difference is
// answered with task_stat P and no file.
func (s *Server) fileQuery(c *apiCall) (map[string]any, error) {
	f := &form{data: c.data}
	reqDate := f.date("req_date", true)
	reqSeq := f.seq("req_seq_id")
	huifu := f.req("huifu_id")
	fileDate := f.req("file_date")
	bill := f.req("bill_type")
	if f.err != nil {
		return nil, f.err
	}
	if !slices.Contains(nkp.BillTypes, bill) {
		return nil, errParams("bill_type %q is not one of %s", bill, strings.Join(nkp.BillTypes, ", "))
	}
	norm, first, _, err := billPeriod(bill, fileDate)
	if err != nil {
		return nil, errParams("%v", err)
	}
	today := c.now.Format(nkp.DateLayout)
	if first.Format(nkp.DateLayout) > today {
		return nil, errParams("file_date %s is in the future", fileDate)
	}
	out := map[string]any{
		"resp_code":  nkp.CodeAccepted,
		"resp_desc":  "query succeeded",
		"huifu_id":   huifu,
		"req_date":   reqDate,
		"req_seq_id": reqSeq,
	}
	s.mu.Lock()
	pending := s.billPendingLocked(huifu, bill, norm)
	s.mu.Unlock()
	if pending {
		out["task_details"] = []any{map[string]any{"task_stat": nkp.StatProcessing, "bill_type": bill, "file_date": norm}}
		return out, nil
	}
	name := BillFileName(huifu, bill, norm)
	link := c.base + "/bills/" + url.PathEscape(huifu) + "/" + bill + "/" + norm + "/" + url.PathEscape(name)
	out["file_details"] = []any{map[string]any{
		"download_url": link, "file_name": name, "bill_type": bill, "file_date": norm,
	}}
	out["task_details"] = []any{map[string]any{"task_stat": nkp.StatSuccess, "bill_type": bill, "file_date": norm}}
	return out, nil
}

// serveBill serves a reconciliation file as CSV. The whole file's SHA-256
// is sent as Repr-Digest and, shortened, as a strong ETag, and byte ranges
// are honoured (with If-Range), so that an interrupted download can
// resume and be checked.
func (s *Server) serveBill(w http.ResponseWriter, r *http.Request) {
	huifu, bill, date, file := r.PathValue("huifu"), r.PathValue("bill"), r.PathValue("date"), r.PathValue("file")
	if !slices.Contains(nkp.BillTypes, bill) {
		http.Error(w, "unknown bill type", http.StatusNotFound)
		return
	}
	norm, first, last, err := billPeriod(bill, date)
	if err != nil || norm != date || file != BillFileName(huifu, bill, norm) {
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	s.mu.Lock()
	pending := s.billPendingLocked(huifu, bill, norm)
	var body []byte
	if !pending {
		body, err = s.billCSVLocked(huifu, bill, first, last)
	}
	s.mu.Unlock()
	if pending {
		http.Error(w, "the file is not ready yet", http.StatusNotFound)
		return
	}
	if err != nil {
		s.log.Error("sandbox could not write a bill", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(body)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	w.Header().Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":")
	http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(body))
}

// Column headers of the reconciliation files: the aggregator's Chinese
// name with the API field name in parentheses. The serial columns follow
// the profile (nkp_seq_id or hf_seq_id).
func tradeHeader(p nkp.Profile) []string {
	return []string{
		"交易日期(trans_date)", "交易时间(trans_time)", "商户号(huifu_id)", "请求日期(req_date)", "请求流水号(req_seq_id)",
		"全局流水号(" + p.SeqField() + ")", "交易类型(trans_type)", "交易状态(trans_stat)", "交易金额(trans_amt)",
		"手续费(fee_amt)", "结算金额(settle_amt)", "原请求日期(org_req_date)", "原请求流水号(org_req_seq_id)",
		"原全局流水号(" + p.OrgSeqField() + ")", "用户订单号(party_order_id)", "渠道交易号(out_trans_id)",
	}
}

var (
	tradeSummaryHeader = []string{
		"总笔数(total_count)", "支付笔数(pay_count)", "支付金额(pay_amt)", "退款笔数(refund_count)",
		"退款金额(refund_amt)", "手续费(fee_amt)", "结算金额(settle_amt)",
	}
	settleHeader = []string{
		"结算日期(settle_date)", "商户号(huifu_id)", "支付笔数(pay_count)", "支付金额(pay_amt)", "退款笔数(refund_count)",
		"退款金额(refund_amt)", "手续费(fee_amt)", "结算金额(settle_amt)",
	}
	settleSummaryHeader = []string{
		"总笔数(total_count)", "支付金额(pay_amt)", "退款金额(refund_amt)", "手续费(fee_amt)", "结算金额(settle_amt)",
	}
	splitSummaryHeader      = []string{"总笔数(total_count)", "分账金额(div_amt)"}
	withdrawalSummaryHeader = []string{"总笔数(total_count)", "出金金额(cash_amt)", "手续费(fee_amt)", "到账金额(real_amt)"}
)

func splitHeader(p nkp.Profile) []string {
	return []string{
		"分账日期(split_date)", "商户号(huifu_id)", "请求日期(req_date)", "请求流水号(req_seq_id)", "全局流水号(" + p.SeqField() + ")",
		"分账接收方(div_huifu_id)", "分账金额(div_amt)", "分账状态(trans_stat)",
	}
}

func withdrawalHeader(p nkp.Profile) []string {
	return []string{
		"出金日期(withdraw_date)", "出金时间(withdraw_time)", "商户号(huifu_id)", "请求流水号(req_seq_id)", "全局流水号(" + p.SeqField() + ")",
		"出金金额(cash_amt)", "手续费(fee_amt)", "到账金额(real_amt)", "出金状态(trans_stat)", "银行账号(bank_acct)",
	}
}

// tradeLine is one transaction of a trade bill as the file reports it.
type tradeLine struct {
	end                        time.Time
	huifu, date, seq, nkpSeq   string
	transType, stat            string
	amount, fee                nkp.Fen
	orgDate, orgSeq, orgNkpSeq string
	party, outTrans            string
	// malformed makes the line unreadable (a difference injected by a
	// test); it still counts in the summary.
	malformed bool
}

// settle is what the transaction adds to the merchant's settlement: the
// amount less the fee for a payment, minus the amount for a refund,
// nothing when it failed.
func (t tradeLine) settle() nkp.Fen {
	switch {
	case t.stat != nkp.StatSuccess:
		return 0
	case t.transType == nkp.TransRefund:
		return -t.amount
	}
	return t.amount - t.fee
}

// tradeLinesLocked lists the transactions of huifu that ended on the days
// first..last, as the trade bill reports them: successful and failed
// payments (orders closed unpaid are no transaction) and refunds, with the
// injected differences applied, in order of their end time.
func (s *Server) tradeLinesLocked(huifu string, first, last time.Time) []tradeLine {
	now := s.now()
	from, to := first.Format(nkp.DateLayout), last.Format(nkp.DateLayout)
	inPeriod := func(t time.Time) bool {
		d := t.In(cst()).Format(nkp.DateLayout)
		return !t.IsZero() && d >= from && d <= to
	}
	var lines []tradeLine
	for _, o := range s.l.orderList {
		expireLocked(o, now)
		if o.huifu != huifu || o.closedBy != "" || (o.stat != nkp.StatSuccess && o.stat != nkp.StatFailure) || !inPeriod(o.endTime) {
			continue
		}
		lines = append(lines, tradeLine{end: o.endTime, huifu: o.huifu, date: o.date, seq: o.seq, nkpSeq: o.nkpSeqID,
			transType: o.tradeType, stat: o.stat, amount: o.amount, party: o.partyOrderID, outTrans: o.outTransID})
	}
	for _, r := range s.l.refundList {
		if r.huifu != huifu || (r.stat != nkp.StatSuccess && r.stat != nkp.StatFailure) || !inPeriod(r.endTime) {
			continue
		}
		lines = append(lines, tradeLine{end: r.endTime, huifu: r.huifu, date: r.date, seq: r.seq, nkpSeq: r.nkpSeqID,
			transType: nkp.TransRefund, stat: r.stat, amount: r.amount, orgDate: r.order.date, orgSeq: r.order.seq,
			orgNkpSeq: r.order.nkpSeqID, party: r.order.partyOrderID})
	}
	lines = s.applyBillDifferencesLocked(huifu, from, to, lines)
	for i := range lines {
		if lines[i].stat == nkp.StatSuccess && lines[i].transType != nkp.TransRefund {
			lines[i].fee = Fee(lines[i].amount)
		}
	}
	sort.SliceStable(lines, func(i, j int) bool {
		if !lines[i].end.Equal(lines[j].end) {
			return lines[i].end.Before(lines[j].end)
		}
		return lines[i].nkpSeq < lines[j].nkpSeq
	})
	return lines
}

// daySettlement is one merchant's settlement of one day.
type daySettlement struct {
	day               string
	pays, refunds     int
	pay, refund, fees nkp.Fen
	settle            nkp.Fen
}

// settlementsLocked sums the trade lines of first..last by day, in order
// of day.
func (s *Server) settlementsLocked(huifu string, first, last time.Time) []daySettlement {
	days := map[string]*daySettlement{}
	for _, t := range s.tradeLinesLocked(huifu, first, last) {
		k := t.end.In(cst()).Format(nkp.DateLayout)
		d := days[k]
		if d == nil {
			d = &daySettlement{day: k}
			days[k] = d
		}
		if t.stat != nkp.StatSuccess {
			continue
		}
		if t.transType == nkp.TransRefund {
			d.refunds++
			d.refund += t.amount
		} else {
			d.pays++
			d.pay += t.amount
			d.fees += t.fee
		}
		d.settle += t.settle()
	}
	out := make([]daySettlement, 0, len(days))
	for _, d := range days {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].day < out[j].day })
	return out
}

// billCSVLocked writes the bill of huifu for the days first..last from the
// ledger, in the aggregator's style: a UTF-8 byte order mark, a header
// row, one row per record, then a summary header and a summary row.
// Amounts are yuan with two decimals; dates and times are Beijing time.
func (s *Server) billCSVLocked(huifu, bill string, first, last time.Time) ([]byte, error) {
	p := s.cfg.Profile
	var buf bytes.Buffer
	buf.WriteString("\ufeff")
	cw := csv.NewWriter(&buf)
	cw.UseCRLF = true
	write := func(rec []string) { _ = cw.Write(rec) }
	switch bill {
	case nkp.BillTrade, nkp.BillTradeMonth:
		write(tradeHeader(p))
		var pays, refunds int
		var pay, refund, fees, settle nkp.Fen
		lines := s.tradeLinesLocked(huifu, first, last)
		for _, t := range lines {
			e := t.end.In(cst())
			amt := t.amount.Yuan()
			if t.malformed {
				amt = "12.3.4"
			}
			write([]string{e.Format(nkp.DateLayout), e.Format("150405"), t.huifu, t.date, t.seq, t.nkpSeq, t.transType,
				t.stat, amt, t.fee.Yuan(), t.settle().Yuan(), t.orgDate, t.orgSeq, t.orgNkpSeq, t.party, t.outTrans})
			if t.stat == nkp.StatSuccess {
				if t.transType == nkp.TransRefund {
					refunds++
					refund += t.amount
				} else {
					pays++
					pay += t.amount
					fees += t.fee
				}
				settle += t.settle()
			}
		}
		for _, j := range s.junkLinesLocked(huifu, first, last) {
			write(j)
		}
		write(tradeSummaryHeader)
		write([]string{strconv.Itoa(len(lines)), strconv.Itoa(pays), pay.Yuan(), strconv.Itoa(refunds), refund.Yuan(), fees.Yuan(), settle.Yuan()})
	case nkp.BillSettle, nkp.BillSettleMon:
		write(settleHeader)
		days := s.settlementsLocked(huifu, first, last)
		if bill == nkp.BillSettle && len(days) == 0 {
			days = []daySettlement{{day: first.Format(nkp.DateLayout)}}
		}
		var count int
		var pay, refund, fees, settle nkp.Fen
		for _, d := range days {
			write([]string{d.day, huifu, strconv.Itoa(d.pays), d.pay.Yuan(), strconv.Itoa(d.refunds), d.refund.Yuan(), d.fees.Yuan(), d.settle.Yuan()})
			count++
			pay, refund, fees, settle = pay+d.pay, refund+d.refund, fees+d.fees, settle+d.settle
		}
		write(settleSummaryHeader)
		write([]string{strconv.Itoa(count), pay.Yuan(), refund.Yuan(), fees.Yuan(), settle.Yuan()})
	case nkp.BillSplit:
		// The sandbox makes no split payments: the header and a zero
		// summary.
		write(splitHeader(p))
		write(splitSummaryHeader)
		write([]string{"0", nkp.Fen(0).Yuan()})
	case nkp.BillWithdrawal:
		// Every merchant's positive settlement of a day is paid out to its
		// bank account automatically the next day (T+1), free of charge.
		write(withdrawalHeader(p))
		var count int
		var cash nkp.Fen
		prev := first.AddDate(0, 0, -1)
		for _, d := range s.settlementsLocked(huifu, prev, prev) {
			if d.settle <= 0 {
				continue
			}
			day := first.Format(nkp.DateLayout)
			seq := "WD" + day + s.digits(8, "withdraw", huifu, day)
			write([]string{day, "090000", huifu, seq, "0030SBX" + day + s.digits(10, "withdraw-seq", huifu, day),
				d.settle.Yuan(), nkp.Fen(0).Yuan(), d.settle.Yuan(), nkp.StatSuccess, "6222********" + s.digits(4, "bank", huifu)})
			count++
			cash += d.settle
		}
		write(withdrawalSummaryHeader)
		write([]string{strconv.Itoa(count), cash.Yuan(), nkp.Fen(0).Yuan(), cash.Yuan()})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, fmt.Errorf("write %s CSV: %w", bill, err)
	}
	return buf.Bytes(), nil
}
