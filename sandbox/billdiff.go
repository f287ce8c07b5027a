package sandbox

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Kinds of difference a test can inject into the reconciliation files.
const (
	// BillExtraTrade adds a successful payment the merchant's system never
	// ordered to the trade bill of Date.
	BillExtraTrade = "extra_trade"
	// BillAmount reports the payment or refund ReqSeqID with TransAmt.
	BillAmount = "amount"
	// BillState reports the payment or refund ReqSeqID with TransStat
	// (by default the opposite final state).
	BillState = "state"
	// BillOmit leaves the payment or refund ReqSeqID out of the files.
	BillOmit = "omit"
	// BillMalformed makes the trade line of ReqSeqID unreadable (its
	// amount becomes "12.3.4"), or, without ReqSeqID, adds a line of
	// garbage to the trade bill of Date.
	BillMalformed = "malformed"
	// BillPending holds back the BillType file of Date: filequery answers
	// task_stat P and the download is refused.
	BillPending = "pending"
)

// BillDifference is a difference between the reconciliation files and the
// sandbox's ledger, injected to test reconciliation. The trade bill, and
// the settlement and payout bills computed from it, report the difference;
// the API (queries and notifications) does not.
type BillDifference struct {
	// Kind is one of BillExtraTrade, BillAmount, BillState, BillOmit,
	// BillMalformed and BillPending.
	Kind string `json:"kind"`
	// HuifuID is the merchant whose files change.
	HuifuID string `json:"huifu_id"`
	// Date is the file date (yyyyMMdd) for BillExtraTrade, BillPending and
	// an untargeted BillMalformed.
	Date string `json:"date,omitempty"`
	// ReqDate and ReqSeqID name the payment or refund changed; ReqDate is
	// optional. For BillExtraTrade, ReqSeqID is the made-up trade's serial
	// (generated when empty).
	ReqDate  string `json:"req_date,omitempty"`
	ReqSeqID string `json:"req_seq_id,omitempty"`
	// TransAmt is the amount reported by BillAmount and of the trade made
	// up by BillExtraTrade (1.00 when zero).
	TransAmt nkp.Fen `json:"trans_amt,omitempty"`
	// TransStat is the state reported by BillState.
	TransStat string `json:"trans_stat,omitempty"`
	// BillType is the file held back by BillPending.
	BillType string `json:"bill_type,omitempty"`
}

// Validate reports a difference that names no target or an unknown kind.
func (d BillDifference) Validate() error {
	if d.HuifuID == "" {
		return fmt.Errorf("huifu_id is required")
	}
	date := func() error {
		if _, err := time.ParseInLocation(nkp.DateLayout, d.Date, cst()); err != nil || len(d.Date) != 8 {
			return fmt.Errorf("date must be a yyyyMMdd day for kind %s", d.Kind)
		}
		return nil
	}
	switch d.Kind {
	case BillExtraTrade:
		if d.TransAmt < 0 {
			return fmt.Errorf("trans_amt must be positive")
		}
		return date()
	case BillAmount:
		if d.TransAmt <= 0 {
			return fmt.Errorf("trans_amt must be positive for kind %s", d.Kind)
		}
		fallthrough
	case BillState, BillOmit:
		if d.ReqSeqID == "" {
			return fmt.Errorf("req_seq_id is required for kind %s", d.Kind)
		}
		if d.Kind == BillState && d.TransStat != "" && d.TransStat != nkp.StatSuccess && d.TransStat != nkp.StatFailure {
			return fmt.Errorf("trans_stat must be S or F")
		}
		return nil
	case BillMalformed:
		if d.ReqSeqID == "" {
			return date()
		}
		return nil
	case BillPending:
		if !slices.Contains(nkp.BillTypes, d.BillType) {
			return fmt.Errorf("bill_type must be one of %v", nkp.BillTypes)
		}
		if _, _, _, err := billPeriod(d.BillType, d.Date); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("kind must be one of %s, %s, %s, %s, %s, %s", BillExtraTrade, BillAmount, BillState, BillOmit, BillMalformed, BillPending)
}

// targets reports whether d changes the transaction huifu/date/seq.
func (d BillDifference) targets(huifu, date, seq string) bool {
	return d.ReqSeqID != "" && d.HuifuID == huifu && d.ReqSeqID == seq && (d.ReqDate == "" || d.ReqDate == date)
}

// applyBillDifferencesLocked changes the trade lines of huifu for the days
// from..to (yyyyMMdd) as the injected differences say.
func (s *Server) applyBillDifferencesLocked(huifu, from, to string, lines []tradeLine) []tradeLine {
	if len(s.l.billDiffs) == 0 {
		return lines
	}
	out := lines[:0]
	for _, t := range lines {
		keep := true
		for _, d := range s.l.billDiffs {
			if !d.targets(t.huifu, t.date, t.seq) {
				continue
			}
			switch d.Kind {
			case BillOmit:
				keep = false
			case BillAmount:
				t.amount = d.TransAmt
			case BillState:
				switch {
				case d.TransStat != "":
					t.stat = d.TransStat
				case t.stat == nkp.StatSuccess:
					t.stat = nkp.StatFailure
				default:
					t.stat = nkp.StatSuccess
				}
			case BillMalformed:
				t.malformed = true
			}
		}
		if keep {
			out = append(out, t)
		}
	}
	for i, d := range s.l.billDiffs {
		if d.Kind != BillExtraTrade || d.HuifuID != huifu || d.Date < from || d.Date > to {
			continue
		}
		day, _ := time.ParseInLocation(nkp.DateLayout, d.Date, cst())
		n := fmt.Sprint(i)
		seq := d.ReqSeqID
		if seq == "" {
			seq = "EXTRA" + s.digits(12, "extra-trade", huifu, d.Date, n)
		}
		amt := d.TransAmt
		if amt == 0 {
			amt = 100
		}
		out = append(out, tradeLine{
			end: day.Add(12 * time.Hour), huifu: huifu, date: d.Date, seq: seq,
			nkpSeq: "0030SBX" + d.Date + s.digits(10, "extra-seq", huifu, d.Date, n), transType: upstream.TradeWeChatJSAPI,
			stat: nkp.StatSuccess, amount: amt, party: "03" + d.Date[2:] + s.digits(14, "extra-party", huifu, d.Date, n),
			outTrans: "42000" + s.digits(15, "extra-trans", huifu, d.Date, n),
		})
	}
	return out
}

// junkLinesLocked returns the garbage lines injected into the trade bill of
// huifu for the days first..last.
func (s *Server) junkLinesLocked(huifu string, first, last time.Time) [][]string {
	from, to := first.Format(nkp.DateLayout), last.Format(nkp.DateLayout)
	var out [][]string
	for _, d := range s.l.billDiffs {
		if d.Kind == BillMalformed && d.ReqSeqID == "" && d.HuifuID == huifu && d.Date >= from && d.Date <= to {
			out = append(out, []string{d.Date, "25:61:00", huifu, "garbage"})
		}
	}
	return out
}

// billPendingLocked reports whether the file of huifu, bill and normalized
// file date is held back.
func (s *Server) billPendingLocked(huifu, bill, fileDate string) bool {
	for _, d := range s.l.billDiffs {
		if d.Kind != BillPending || d.HuifuID != huifu || d.BillType != bill {
			continue
		}
		if norm, _, _, err := billPeriod(bill, d.Date); err == nil && norm == fileDate {
			return true
		}
	}
	return false
}

func (s *Server) serveBillDifferences(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := append([]BillDifference{}, s.l.billDiffs...)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveAddBillDifference(w http.ResponseWriter, r *http.Request) {
	var d BillDifference
	if !decodeControl(w, r, &d) {
		return
	}
	if err := d.Validate(); err != nil {
		controlFail(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mu.Lock()
	s.l.billDiffs = append(s.l.billDiffs, d)
	out := append([]BillDifference{}, s.l.billDiffs...)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveClearBillDifferences(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.l.billDiffs = nil
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, []BillDifference{})
}
