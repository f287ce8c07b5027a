package statements

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// partMeta is kept beside a partial download (<file>.part.json): where it
// comes from and which version of the file it is, so that a resumed
// download asks for the rest of the same file.
type partMeta struct {
	URL    string `json:"url"`
	ETag   string `json:"etag,omitempty"`
	Total  int64  `json:"total"`
	SHA256 string `json:"sha256,omitempty"`
}

// downloaded describes a complete, checked download.
type downloaded struct {
	size   int64
	sha256 string
	// checked is "sha-256" when the server's digest was verified, "size"
	// when only the length could be.
	checked string
}

// errRestart asks the download loop to start over from the first byte
// without counting a failure: the server sent another version of the file.
var errRestart = errors.New("the file changed on the server; starting over")

// permanentError is a failure that retrying will not mend (a 404, a
// checksum that keeps failing is retried once).
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// download fetches url into dest, streaming to dest+".part" and resuming a
// partial file left by an earlier attempt with a byte range (If-Range the
// ETag it was started with). The complete file is checked against the
// length the server announced and, when the server sent one
// (Repr-Digest sha-256), its digest, and only then renamed to dest.
// progress, when not nil, is told the bytes present and the total (-1
// when unknown) as they arrive.
func (a *Archive) download(ctx context.Context, url, dest string, progress func(done, total int64)) (downloaded, error) {
	var last error
	restarts := 0
	for attempt := 0; attempt <= a.cfg.Retries; {
		if attempt > 0 {
			t := time.NewTimer(a.cfg.RetryWait * time.Duration(attempt))
			select {
			case <-ctx.Done():
				t.Stop()
				return downloaded{}, ctx.Err()
			case <-t.C:
			}
		}
		d, err := a.attempt(ctx, url, dest, progress)
		if err == nil {
			return d, nil
		}
		if ctx.Err() != nil {
			return downloaded{}, ctx.Err()
		}
		var pe permanentError
		if errors.As(err, &pe) {
			return downloaded{}, pe.err
		}
		if errors.Is(err, errRestart) && restarts < 3 {
			restarts++
			continue
		}
		a.log.Warn("statement download failed; will resume", "file", baseName(dest), "attempt", attempt+1, "error", err)
		last = err
		attempt++
	}
	return downloaded{}, fmt.Errorf("download %s: %w", baseName(dest), last)
}

func readMeta(path string) (partMeta, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return partMeta{}, false
	}
	var m partMeta
	return m, json.Unmarshal(b, &m) == nil
}

func writeMeta(path string, m partMeta) error {
	b, _ := json.Marshal(m)
	return os.WriteFile(path, b, 0o600)
}

// attempt makes one request and streams its body to the partial file.
func (a *Archive) attempt(ctx context.Context, url, dest string, progress func(done, total int64)) (downloaded, error) {
	part, metaPath := dest+".part", dest+".part.json"
	meta, hasMeta := readMeta(metaPath)
	var have int64
	if st, err := os.Stat(part); err == nil && hasMeta && meta.URL == url && meta.ETag != "" {
		have = st.Size()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return downloaded{}, permanentError{fmt.Errorf("build request: %w", err)}
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		req.Header.Set("If-Range", meta.ETag)
	}
	resp, err := a.cfg.HTTP.Do(req)
	if err != nil {
		return downloaded{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	flags := os.O_WRONLY | os.O_CREATE
	var total int64 = -1
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, size, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			_ = os.Remove(part)
			return downloaded{}, fmt.Errorf("the server answered the range from byte %d with %q", have, resp.Header.Get("Content-Range"))
		}
		total = size
		flags |= os.O_APPEND
	case http.StatusOK:
		have = 0
		total = resp.ContentLength
		flags |= os.O_TRUNC
	case http.StatusRequestedRangeNotSatisfiable:
		// The partial file is not a prefix of what the server has now.
		_ = os.Remove(part)
		_ = os.Remove(metaPath)
		return downloaded{}, errRestart
	case http.StatusNotFound, http.StatusForbidden, http.StatusUnauthorized, http.StatusGone:
		return downloaded{}, permanentError{fmt.Errorf("HTTP %d", resp.StatusCode)}
	default:
		return downloaded{}, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	digest := reprSHA256(resp.Header.Get("Repr-Digest"))
	next := partMeta{URL: url, ETag: strongETag(resp.Header.Get("ETag")), Total: total, SHA256: digest}
	if have > 0 && ((meta.SHA256 != "" && digest != "" && meta.SHA256 != digest) || (meta.Total >= 0 && total >= 0 && meta.Total != total)) {
		// The server sent the rest of another version.
		_ = os.Remove(part)
		_ = os.Remove(metaPath)
		return downloaded{}, errRestart
	}
	if err := writeMeta(metaPath, next); err != nil {
		return downloaded{}, fmt.Errorf("write %s: %w", metaPath, err)
	}
	f, err := os.OpenFile(part, flags, 0o600)
	if err != nil {
		return downloaded{}, permanentError{fmt.Errorf("open %s: %w", part, err)}
	}
	w := &progressWriter{w: f, done: have, total: total, report: progress}
	if progress != nil {
		progress(have, total)
	}
	_, copyErr := io.CopyBuffer(w, resp.Body, make([]byte, 64<<10))
	syncErr := f.Sync()
	closeErr := f.Close()
	if copyErr != nil {
		return downloaded{}, fmt.Errorf("after %d of %d bytes: %w", w.done, total, copyErr)
	}
	if err := errors.Join(syncErr, closeErr); err != nil {
		return downloaded{}, fmt.Errorf("write %s: %w", part, err)
	}
	size, sum, err := hashFile(part)
	if err != nil {
		return downloaded{}, err
	}
	if total >= 0 && size != total {
		return downloaded{}, fmt.Errorf("got %d bytes, the server announced %d", size, total)
	}
	d := downloaded{size: size, sha256: sum, checked: "size"}
	if digest != "" {
		if digest != sum {
			_ = os.Remove(part)
			_ = os.Remove(metaPath)
			return downloaded{}, fmt.Errorf("SHA-256 %s, the server announced %s", sum, digest)
		}
		d.checked = "sha-256"
	}
	if err := os.Rename(part, dest); err != nil {
		return downloaded{}, permanentError{fmt.Errorf("keep %s: %w", dest, err)}
	}
	_ = os.Remove(metaPath)
	return d, nil
}

// hashFile returns the size and hex SHA-256 of the file at path, read in
// a stream.
func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// contentRange parses "bytes start-end/size".
func contentRange(v string) (start, size int64, ok bool) {
	v, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(v, "/")
	s, _, found2 := strings.Cut(rng, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(s, 10, 64)
	size, err2 := strconv.ParseInt(sz, 10, 64)
	if sz == "*" {
		size, err2 = -1, nil
	}
	return start, size, err1 == nil && err2 == nil
}

// reprSHA256 returns the hex SHA-256 of a Repr-Digest header
// (RFC 9530: sha-256=:base64:), "" when there is none.
func reprSHA256(v string) string {
	for _, item := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || !strings.EqualFold(k, "sha-256") {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(strings.Trim(val, ":"))
		if err != nil || len(b) != sha256.Size {
			return ""
		}
		return hex.EncodeToString(b)
	}
	return ""
}

// strongETag returns v when it is a strong ETag, which alone may be used
// in If-Range.
func strongETag(v string) string {
	if strings.HasPrefix(v, `"`) {
		return v
	}
	return ""
}

type progressWriter struct {
	w           io.Writer
	done, total int64
	report      func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.report != nil {
		p.report(p.done, p.total)
	}
	return n, err
}
