package sandbox

import (
	"bytes"
	"encoding/csv"
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
// than today is refused.
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
	name := BillFileName(huifu, bill, norm)
	link := c.base + "/bills/" + url.PathEscape(huifu) + "/" + bill + "/" + norm + "/" + url.PathEscape(name)
	return map[string]any{
		"resp_code":  nkp.CodeAccepted,
		"resp_desc":  "query succeeded",
		"huifu_id":   huifu,
		"req_date":   reqDate,
		"req_seq_id": reqSeq,
		"file_details": []any{map[string]any{
			"download_url": link, "file_name": name, "bill_type": bill, "file_date": norm,
		}},
		"task_details": []any{map[string]any{
			"task_stat": nkp.StatSuccess, "bill_type": bill, "file_date": norm,
		}},
	}, nil
}

// serveBill serves a reconciliation file as CSV.
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
	body, err := s.billCSVLocked(huifu, bill, first, last)
	s.mu.Unlock()
	if err != nil {
		s.log.Error("sandbox could not write a bill", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	_, _ = w.Write(body)
}

// billRow is one final transaction in a bill.
type billRow struct {
	end    time.Time
	fields []string
}

// billCSVLocked writes the bill of huifu for the days first..last from the
// ledger. Amounts are yuan with two decimals; times are China Standard
// Time.
func (s *Server) billCSVLocked(huifu, bill string, first, last time.Time) ([]byte, error) {
	now := s.now()
	inPeriod := func(t time.Time) bool {
		d := t.In(cst()).Format(nkp.DateLayout)
		return !t.IsZero() && d >= first.Format(nkp.DateLayout) && d <= last.Format(nkp.DateLayout)
	}
	seq := s.cfg.Profile.SeqField()
	orgSeq := s.cfg.Profile.OrgSeqField()
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	switch bill {
	case nkp.BillTrade, nkp.BillTradeMonth:
		_ = cw.Write([]string{"trans_date", "trans_time", "huifu_id", "req_date", "req_seq_id", seq, "trans_type",
			"trans_stat", "trans_amt", "fee_amt", "org_req_date", "org_req_seq_id", orgSeq, "party_order_id", "out_trans_id"})
		var rows []billRow
		for _, o := range s.l.orderList {
			expireLocked(o, now)
			if o.huifu != huifu || o.stat != nkp.StatSuccess || !inPeriod(o.endTime) {
				continue
			}
			e := o.endTime.In(cst())
			rows = append(rows, billRow{o.endTime, []string{e.Format(nkp.DateLayout), e.Format("150405"), o.huifu, o.date, o.seq,
				o.nkpSeqID, o.tradeType, o.stat, o.amount.Yuan(), Fee(o.amount).Yuan(), "", "", "", o.partyOrderID, o.outTransID}})
		}
		for _, r := range s.l.refundList {
			if r.huifu != huifu || r.stat != nkp.StatSuccess || !inPeriod(r.endTime) {
				continue
			}
			e := r.endTime.In(cst())
			rows = append(rows, billRow{r.endTime, []string{e.Format(nkp.DateLayout), e.Format("150405"), r.huifu, r.date, r.seq,
				r.nkpSeqID, nkp.TransRefund, r.stat, r.amount.Yuan(), nkp.Fen(0).Yuan(), r.order.date, r.order.seq, r.order.nkpSeqID,
				r.order.partyOrderID, ""}})
		}
		sort.SliceStable(rows, func(i, j int) bool {
			if !rows[i].end.Equal(rows[j].end) {
				return rows[i].end.Before(rows[j].end)
			}
			return rows[i].fields[5] < rows[j].fields[5]
		})
		for _, r := range rows {
			_ = cw.Write(r.fields)
		}
	case nkp.BillSettle, nkp.BillSettleMon:
		_ = cw.Write([]string{"settle_date", "huifu_id", "pay_count", "pay_amt", "refund_count", "refund_amt", "fee_amt", "settle_amt"})
		type day struct {
			pays, refunds     int
			pay, refund, fees nkp.Fen
		}
		days := map[string]*day{}
		get := func(t time.Time) *day {
			k := t.In(cst()).Format(nkp.DateLayout)
			if days[k] == nil {
				days[k] = &day{}
			}
			return days[k]
		}
		for _, o := range s.l.orderList {
			expireLocked(o, now)
			if o.huifu == huifu && o.stat == nkp.StatSuccess && inPeriod(o.endTime) {
				d := get(o.endTime)
				d.pays++
				d.pay += o.amount
				d.fees += Fee(o.amount)
			}
		}
		for _, r := range s.l.refundList {
			if r.huifu == huifu && r.stat == nkp.StatSuccess && inPeriod(r.endTime) {
				d := get(r.endTime)
				d.refunds++
				d.refund += r.amount
			}
		}
		if bill == nkp.BillSettle && len(days) == 0 {
			get(first)
		}
		keys := make([]string, 0, len(days))
		for k := range days {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			d := days[k]
			_ = cw.Write([]string{k, huifu, strconv.Itoa(d.pays), d.pay.Yuan(), strconv.Itoa(d.refunds), d.refund.Yuan(),
				d.fees.Yuan(), (d.pay - d.refund - d.fees).Yuan()})
		}
	case nkp.BillSplit:
		// The sandbox does no split payments: the header alone.
		_ = cw.Write([]string{"split_date", "huifu_id", "req_seq_id", seq, "div_huifu_id", "div_amt"})
	case nkp.BillWithdrawal:
		// The sandbox makes no payouts: the header alone.
		_ = cw.Write([]string{"withdraw_date", "huifu_id", "req_seq_id", "cash_amt", "fee_amt", "trans_stat"})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, fmt.Errorf("write %s CSV: %w", bill, err)
	}
	return buf.Bytes(), nil
}
