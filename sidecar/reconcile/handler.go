package reconcile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/api"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/statements"
)

// Handler returns the http.Handler of the statements and reconciliation
// API; the caller mounts it on the app API behind its authentication.
//
//	GET  /v1/statements/{date}/{bill_type}               parsed rows, paged (?cursor=&limit=)
//	GET  /v1/statements/{date}/{bill_type}/files/{name}  the original file (byte ranges honoured)
//	POST /v1/reconciliations                             {"date":"yyyyMMdd","refetch":false}: reconcile the day now
//	GET  /v1/reconciliations                             runs, newest first (?limit=&before=)
//	GET  /v1/reconciliations/{id}                        one run and its differences, paged (?after=&limit=)
//
// A statement not kept yet is fetched from the upstream first.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/statements/{date}/{bill_type}", s.handleRows)
	mux.HandleFunc("GET /v1/statements/{date}/{bill_type}/files/{name}", s.handleFile)
	mux.HandleFunc("POST /v1/reconciliations", s.handleRun)
	mux.HandleFunc("GET /v1/reconciliations", s.handleList)
	mux.HandleFunc("GET /v1/reconciliations/{id}", s.handleGet)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, api.Unrouted(mux, w, r))
	})
	return mux
}

// StatementPage is a page of parsed statement records.
type StatementPage struct {
	Date     string                 `json:"date"`
	BillType string                 `json:"bill_type"`
	Files    []statements.File      `json:"files"`
	Rows     []statements.Row       `json:"rows"`
	Errors   []*statements.RowError `json:"errors"`
	// NextCursor continues the listing; empty at the end.
	NextCursor string `json:"next_cursor"`
}

// pageCursor is a position in the files of a bill: file index, byte offset
// and line.
func parseCursor(v string) (int, statements.Cursor, bool) {
	if v == "" {
		return 0, statements.Cursor{}, true
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return 0, statements.Cursor{}, false
	}
	i, err1 := strconv.Atoi(parts[0])
	off, err2 := strconv.ParseInt(parts[1], 10, 64)
	line, err3 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || i < 0 || off < 0 || line < 0 {
		return 0, statements.Cursor{}, false
	}
	return i, statements.Cursor{Offset: off, Line: line}, true
}

func limitParam(r *http.Request, def, maxLimit int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "limit", Message: fmt.Sprintf("limit must be between 1 and %d", maxLimit)}
	}
	return n, nil
}

// files returns the statement files of a request's date and bill type,
// fetching them when needed.
func (s *Service) files(r *http.Request) (string, string, []statements.File, error) {
	date, bill := r.PathValue("date"), r.PathValue("bill_type")
	if !slices.Contains(nkp.BillTypes, bill) {
		return "", "", nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "bill_type",
			Message: "bill_type must be one of " + strings.Join(nkp.BillTypes, ", ")}
	}
	norm, err := statements.NormalizeDate(bill, date)
	if err != nil {
		return "", "", nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "date", Message: err.Error()}
	}
	files, err := s.archive.Ensure(r.Context(), bill, norm)
	if err != nil {
		return "", "", nil, fetchError(err)
	}
	return norm, bill, files, nil
}

// fetchError maps a failed fetch to the API's answer.
func fetchError(err error) error {
	if errors.Is(err, statements.ErrNotReady) {
		return &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeUpstreamUnavailable,
			Message: "the upstream has not finished this statement yet; try again later", Err: err}
	}
	if errors.Is(err, statements.ErrFetch) {
		return &api.Error{Status: http.StatusBadGateway, Code: api.CodeUpstreamUnavailable, Message: "the statement could not be fetched from the upstream", Err: err}
	}
	return err
}

func (s *Service) handleRows(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	idx, cur, ok := parseCursor(r.URL.Query().Get("cursor"))
	if !ok {
		s.fail(w, r, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "cursor", Message: "cursor must be a next_cursor of an earlier page"})
		return
	}
	date, bill, files, err := s.files(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := StatementPage{Date: date, BillType: bill, Files: files, Rows: []statements.Row{}, Errors: []*statements.RowError{}}
	for ; idx < len(files); idx, cur = idx+1, (statements.Cursor{}) {
		rd, err := statements.OpenAt(files[idx].Path, bill, cur)
		if err != nil {
			var fe *statements.FileError
			if errors.As(err, &fe) {
				page.Errors = append(page.Errors, &statements.RowError{File: fe.File, Reason: fe.Reason})
				continue
			}
			s.fail(w, r, err)
			return
		}
		full := false
		for {
			row, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var re *statements.RowError
			if err != nil && !errors.As(err, &re) {
				// The rest of this file cannot be read; say so and go on.
				page.Errors = append(page.Errors, &statements.RowError{File: files[idx].Name, Reason: err.Error()})
				break
			}
			if re != nil {
				page.Errors = append(page.Errors, re)
			} else {
				page.Rows = append(page.Rows, row)
			}
			if len(page.Rows)+len(page.Errors) >= limit {
				c := rd.Cursor()
				page.NextCursor = fmt.Sprintf("%d.%d.%d", idx, c.Offset, c.Line)
				full = true
				break
			}
		}
		_ = rd.Close()
		if full {
			break
		}
	}
	out, err := wirePage(page)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) handleFile(w http.ResponseWriter, r *http.Request) {
	_, _, files, err := s.files(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name := r.PathValue("name")
	i := slices.IndexFunc(files, func(f statements.File) bool { return f.Name == name })
	if i < 0 {
		s.fail(w, r, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: "no statement file " + name})
		return
	}
	f, err := os.Open(files[i].Path)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer func() { _ = f.Close() }()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("ETag", `"`+files[i].SHA256+`"`)
	http.ServeContent(w, r, name, files[i].DownloadedAt, f)
}

// RunRequest is the body of POST /v1/reconciliations.
type RunRequest struct {
	// Date is the day to reconcile, yyyyMMdd.
	Date string `json:"date"`
	// Refetch downloads the day's statements again.
	Refetch bool `json:"refetch,omitempty"`
}

func (s *Service) handleRun(w http.ResponseWriter, r *http.Request) {
	var req RunRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidJSON, Message: "send {\"date\":\"yyyyMMdd\"}"})
		return
	}
	rep, err := s.rec.Run(r.Context(), req.Date, RunOptions{Trigger: TriggerAPI, Refetch: req.Refetch})
	switch {
	case errors.Is(err, ErrBadDate):
		s.fail(w, r, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "date", Message: "date must be yyyyMMdd"})
		return
	case err != nil:
		s.fail(w, r, fetchError(err))
		return
	}
	writeJSON(w, http.StatusOK, wireReport(*rep))
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 20, 200)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var before time.Time
	if v := r.URL.Query().Get("before"); v != "" {
		if before, err = time.Parse(time.RFC3339Nano, v); err != nil {
			s.fail(w, r, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "before", Message: "before must be an RFC 3339 time"})
			return
		}
	}
	runs, err := s.runs.ListRuns(r.Context(), s.archive.MerchantID(), before, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.ReconciliationList{Runs: wireReports(runs)})
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after := 0
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = strconv.Atoi(v); err != nil || after < 0 {
			s.fail(w, r, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "after", Message: "after must be a difference number"})
			return
		}
	}
	rep, err := s.runs.GetRun(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrRunNotFound) || (err == nil && rep.MerchantID != s.archive.MerchantID()) {
		s.fail(w, r, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: "no such reconciliation run"})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	diffs, err := s.runs.ListDifferences(r.Context(), rep.RunID, after, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := client.ReconciliationPage{Run: wireReport(rep), Differences: wireDifferences(diffs)}
	if page.Differences == nil {
		page.Differences = []client.ReconciliationDifference{}
	}
	if len(diffs) == limit {
		page.NextAfter = diffs[len(diffs)-1].Seq
	}
	writeJSON(w, http.StatusOK, page)
}

// fail answers err with the app API's error writer, so that codes,
// shapes and headers are those of every other endpoint; the cause of an
// internal error is logged, never shown.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *api.Error
	if !errors.As(err, &e) || e.Status >= http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "reconciliation API", slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	if e != nil && e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "600")
	}
	api.WriteError(w, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) { api.WriteJSON(w, status, v) }
