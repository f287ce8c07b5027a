package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/api"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// maxBody bounds the body of a bulk replay.
const maxBody = 4 << 10

// Handler returns the http.Handler of the events API. It serves the paths
// listed in the package documentation; the caller mounts it on the app API
// behind its authentication.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

// Register adds the events API's routes to mux, so that the app API serves
// them behind its own authentication and reports each route on its own
// (a replay is not a read).
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("/v1/events", s.method(http.MethodGet, s.handleList))
	mux.HandleFunc("/v1/events/replay", s.method(http.MethodPost, s.handleReplayAll))
	mux.HandleFunc("/v1/events/{id}", s.method(http.MethodGet, s.handleGet))
	mux.HandleFunc("/v1/events/{id}/replay", s.method(http.MethodPost, s.handleReplay))
}

func (s *Service) method(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m {
			w.Header().Set("Allow", m)
			s.writeError(w, r, &api.Error{Status: http.StatusMethodNotAllowed, Code: api.CodeMethodNotAllowed, Message: r.Method + " is not allowed here; use " + m})
			return
		}
		h(w, r)
	}
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status, err := ParseStatus(q.Get("status"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var after int64
	if v := q.Get("after"); v != "" {
		after, err = strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.fail(w, r, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "after", Message: "after must be an event sequence number"})
			return
		}
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 {
			s.fail(w, r, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "limit", Message: "limit must be a positive integer"})
			return
		}
	}
	page, err := s.List(r.Context(), status, after, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	rec, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (s *Service) handleReplay(w http.ResponseWriter, r *http.Request) {
	rec, err := s.Replay(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// replayAllRequest is the body of POST /v1/events/replay.
type replayAllRequest struct {
	Status string `json:"status"`
}

func (s *Service) handleReplayAll(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.fail(w, r, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidJSON, Message: "body too large or unreadable"})
		return
	}
	req := replayAllRequest{Status: string(store.EventDead)}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			s.fail(w, r, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidJSON, Message: "body must be {\"status\":\"dead\"} or {\"status\":\"delivered\"}"})
			return
		}
	}
	n, err := s.ReplayAll(r.Context(), store.EventStatus(req.Status))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ReplayResult{Replayed: n})
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *api.Error
	if !errors.As(err, &e) {
		e = &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "internal error", Err: err}
	}
	s.writeError(w, r, e)
}

func (s *Service) writeError(w http.ResponseWriter, r *http.Request, e *api.Error) {
	if e.Err != nil {
		s.log.ErrorContext(r.Context(), "events API", slog.String("code", e.Code), slog.String("path", r.URL.Path), slog.Any("error", e.Err))
	}
	writeJSON(w, e.Status, client.ErrorBody{Error: client.ErrorDetail{Code: e.Code, Message: e.Message, Field: e.Field}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"cannot encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
