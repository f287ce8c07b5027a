package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// paymentLocks serializes refund creation per payment within this process,
// so that two concurrent refunds cannot both pass the remaining-amount
// check. Across replicas the upstream's own check is the last guard.
type paymentLocks struct {
	mu    sync.Mutex
	locks map[string]*lockEntry
}

type lockEntry struct {
	mu   sync.Mutex
	refs int
}

func (l *paymentLocks) lock(id string) func() {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*lockEntry{}
	}
	e := l.locks[id]
	if e == nil {
		e = &lockEntry{}
		l.locks[id] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}

func (s *Server) createRefund(ctx context.Context, r *http.Request, body []byte) (int, any, error) {
	var req client.CreateRefundRequest
	if err := decodeStrict(body, &req); err != nil {
		return 0, nil, err
	}
	if req.OutRefundNo == "" {
		return 0, nil, badRequest(CodeMissingField, "out_refund_no", "out_refund_no is required")
	}
	if !outNoPattern.MatchString(req.OutRefundNo) {
		return 0, nil, badRequest(CodeInvalidField, "out_refund_no", "out_refund_no must be 1 to 64 letters, digits or _-.|*")
	}
	if err := s.validateAmount("amount_fen", req.AmountFen); err != nil {
		return 0, nil, err
	}
	if utf8.RuneCountInString(req.Reason) > maxDescriptionRunes {
		return 0, nil, badRequest(CodeInvalidField, "reason", "reason takes at most %d characters", maxDescriptionRunes)
	}
	unlock := s.refundLocks.lock(r.PathValue("id"))
	defer unlock()
	p, err := s.store.GetPayment(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, notFound(err, "payment")
	}
	hash := requestHash(append([]byte(p.ID+"\n"), body...))
	if rf, err := s.store.GetRefundByOutRefundNo(ctx, p.MerchantID, req.OutRefundNo); err == nil {
		if rf.RequestHash != hash {
			return 0, nil, errorf(http.StatusConflict, CodeOutRefundNoConflict, "out_refund_no",
				"out_refund_no %q is already used by refund %s with different parameters", req.OutRefundNo, rf.ID)
		}
		if rf.Status == store.StatusPending {
			return s.sendRefund(ctx, p, rf, http.StatusOK)
		}
		return http.StatusOK, ledger.RefundToClient(rf), nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, nil, fmt.Errorf("look up out_refund_no: %w", err)
	}
	if p.Status != store.StatusSucceeded {
		return 0, nil, errorf(http.StatusConflict, CodePaymentNotRefundable, "", "payment %s is %s; only succeeded payments can be refunded", p.ID, p.Status)
	}
	refunds, err := s.store.ListRefunds(ctx, p.ID)
	if err != nil {
		return 0, nil, fmt.Errorf("list refunds: %w", err)
	}
	committed := p.RefundedFen
	for _, rf := range refunds {
		if !rf.Status.Final() {
			committed += rf.AmountFen
		}
	}
	if remaining := p.AmountFen - committed; req.AmountFen > remaining {
		return 0, nil, errorf(http.StatusUnprocessableEntity, CodeRefundExceedsPayment, "amount_fen",
			"amount_fen %d exceeds the %d fen left to refund on payment %s", req.AmountFen, remaining, p.ID)
	}
	now := s.now()
	rf := store.Refund{
		ID: newID("re"), PaymentID: p.ID, MerchantID: p.MerchantID, OutRefundNo: req.OutRefundNo, AmountFen: req.AmountFen,
		Reason: strings.TrimSpace(req.Reason), ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now),
		Status: store.StatusPending, RequestHash: hash, CreatedAt: now, UpdatedAt: now, NextQueryAt: now.Add(s.cfg.FirstQueryAfter),
	}
	if err := s.store.CreateRefund(ctx, &rf); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return 0, nil, errorf(http.StatusConflict, CodeOutRefundNoConflict, "out_refund_no", "out_refund_no %q is already used", req.OutRefundNo)
		}
		return 0, nil, fmt.Errorf("store refund: %w", err)
	}
	return s.sendRefund(ctx, p, rf, http.StatusCreated)
}

// sendRefund sends a stored pending refund upstream under its own
// req_seq_id and records the answer. Sending it again after a lost answer
// cannot refund twice: the upstream books a req_seq_id once.
func (s *Server) sendRefund(ctx context.Context, p store.Payment, rf store.Refund, okStatus int) (int, any, error) {
	resp, err := s.upstream.Refund(ctx, nkp.RefundRequest{
		ReqDate: rf.ReqDate, ReqSeqID: rf.ReqSeqID, HuifuID: rf.MerchantID, OrdAmt: nkp.Fen(rf.AmountFen),
		OrgReqDate: p.ReqDate, OrgReqSeqID: p.ReqSeqID, NotifyURL: s.cfg.NotifyURL, Remark: rf.Reason,
	})
	if err != nil {
		s.metrics.upstreamCalls.WithLabelValues(nkp.PathRefund, "error").Inc()
		return 0, nil, upstreamError(err)
	}
	raw, _ := json.Marshal(resp)
	bg := context.WithoutCancel(ctx)
	if !resp.Accepted() {
		s.metrics.upstreamCalls.WithLabelValues(nkp.PathRefund, "rejected").Inc()
		if resp.RespCode == nkp.CodeDuplicate {
			// An earlier attempt got through; the query settles it.
			return http.StatusAccepted, ledger.RefundToClient(rf), nil
		}
		if _, _, err := s.store.TransitionRefund(bg, rf.ID, store.Transition{To: store.StatusFailed, TransStat: resp.TransStat, UpstreamFields: raw, At: s.now()}); err != nil {
			s.log.ErrorContext(ctx, "record refused refund", "refund", rf.ID, "err", err)
		}
		if err := s.store.ScheduleQuery(bg, ledger.KindRefund, rf.ID, noTime, 0, resp.RespDesc); err != nil {
			s.log.ErrorContext(ctx, "stop querying refused refund", "refund", rf.ID, "err", err)
		}
		return 0, nil, errorf(http.StatusUnprocessableEntity, CodeUpstreamRejected, "", "upstream refused the refund: %s %s", resp.RespCode, resp.RespDesc)
	}
	s.metrics.upstreamCalls.WithLabelValues(nkp.PathRefund, "accepted").Inc()
	rf, _, err = s.store.TransitionRefund(bg, rf.ID, store.Transition{To: store.StatusProcessing, TransStat: resp.TransStat, NkpSeqID: resp.NkpSeqID, UpstreamFields: raw, At: s.now()})
	if err != nil {
		return 0, nil, fmt.Errorf("record accepted refund: %w", err)
	}
	if ledger.RefundStatusFromUpstream(resp.TransStat).Final() {
		rf, _, err = s.ledger.ApplyRefund(bg, rf.ID, ledger.Result{
			TransStat: resp.TransStat, BankCode: resp.BankCode, BankMessage: resp.BankMessage, NkpSeqID: resp.NkpSeqID,
			Amount: resp.OrdAmt, Upstream: raw, Source: ledger.SourceAPI,
		})
		if err != nil {
			return 0, nil, fmt.Errorf("apply final refund answer: %w", err)
		}
	}
	return okStatus, ledger.RefundToClient(rf), nil
}

func (s *Server) getRefund(ctx context.Context, r *http.Request) (int, any, error) {
	rf, err := s.store.GetRefund(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, notFound(err, "refund")
	}
	return http.StatusOK, ledger.RefundToClient(rf), nil
}

func (s *Server) listRefunds(ctx context.Context, r *http.Request) (int, any, error) {
	p, err := s.store.GetPayment(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, notFound(err, "payment")
	}
	refunds, err := s.store.ListRefunds(ctx, p.ID)
	if err != nil {
		return 0, nil, fmt.Errorf("list refunds: %w", err)
	}
	out := make([]client.Refund, 0, len(refunds))
	for _, rf := range refunds {
		out = append(out, ledger.RefundToClient(rf))
	}
	return http.StatusOK, map[string]any{"refunds": out}, nil
}
