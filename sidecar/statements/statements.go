// Package statements fetches, keeps and reads the upstream's
// reconciliation files ("statements"): the daily trade, settlement, split
// and payout bills and the monthly trade and settlement bills.
//
// Invariants:
//   - A file is asked for with filequery, downloaded as a stream to
//     <name>.part (never held whole in memory) and becomes <name> only once
//     its length and, when the server gives one, its SHA-256 are checked.
//   - A failed download keeps its partial file and resumes from there with
//     an HTTP byte range tied to the file's ETag (If-Range), so a changed
//     file is never stitched onto an old beginning.
//   - A file is kept under <dir>/<huifu_id>/<file_date>/ and listed in that
//     folder's manifest.json with its size and SHA-256; a file in the
//     manifest whose size still matches is never downloaded again.
//   - Reading is record by record in constant memory. Amounts become fen
//     through nkp.ParseYuan, times are Beijing time, both serial dialects
//     (nkp_seq_id, hf_seq_id) are read. A record that cannot be read is
//     reported with its file, line and reason and reading goes on; a file
//     that cannot be read is reported and the others are still read.
package statements

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// DailyBills are the bill types of one day.
var DailyBills = []string{nkp.BillTrade, nkp.BillSettle, nkp.BillSplit, nkp.BillWithdrawal}

// MonthlyBills are the bill types of one month.
var MonthlyBills = []string{nkp.BillTradeMonth, nkp.BillSettleMon}

// Monthly reports whether a bill type covers a month.
func Monthly(billType string) bool { return slices.Contains(MonthlyBills, billType) }

// ErrNotReady is wrapped by the error of a bill the upstream has not
// finished generating (task_stat other than S); ask again later.
var ErrNotReady = errors.New("the upstream has not finished the file")

// ErrFetch is wrapped by the error of a file that could not be fetched
// from the upstream: filequery failed or was refused, or the download
// failed after its retries.
var ErrFetch = errors.New("fetching the statement failed")

// ErrNotFound is wrapped when a kept file is asked for that is not kept.
var ErrNotFound = errors.New("statement not found")

// FileQuerier asks the upstream where reconciliation files are;
// *nkp.Client implements it.
type FileQuerier interface {
	FileQuery(ctx context.Context, req nkp.FileQueryRequest) (nkp.FileQueryResponse, error)
}

// Config configures an Archive.
type Config struct {
	// Dir is where files are kept. Required.
	Dir string
	// MerchantID is the huifu_id whose files are fetched. Required.
	MerchantID string
	// Upstream answers filequery. Required for Fetch.
	Upstream FileQuerier
	// HTTP downloads the files; a client with its own transport when nil.
	// Its Timeout should be zero (a large file takes long); cancel through
	// the context instead.
	HTTP *http.Client
	// Retries is how many times a failed download is resumed; default 3.
	Retries int
	// RetryWait is the wait before the first retry, growing linearly;
	// default 1 s.
	RetryWait time.Duration
	// Now is the clock (for req_date and req_seq_id); time.Now when nil.
	Now func() time.Time
	// Logger receives retries; slog.Default when nil.
	Logger *slog.Logger
}

// Archive fetches statements and keeps them on disk. It is safe for
// concurrent use; two fetches of the same file in one process share one
// download.
type Archive struct {
	cfg    Config
	log    *slog.Logger
	flight singleflight.Group
	mu     sync.Mutex // guards manifest files
}

// New checks cfg and returns an Archive.
func New(cfg Config) (*Archive, error) {
	if cfg.Dir == "" || cfg.MerchantID == "" {
		return nil, errors.New("statements: dir and merchant id are required")
	}
	if !idPattern.MatchString(cfg.MerchantID) {
		return nil, fmt.Errorf("statements: merchant id %q is not a huifu_id", cfg.MerchantID)
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 3
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Archive{cfg: cfg, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	return a, nil
}

// MerchantID returns the merchant whose files the archive keeps.
func (a *Archive) MerchantID() string { return a.cfg.MerchantID }

var (
	idPattern   = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)
	namePattern = regexp.MustCompile(`^[0-9A-Za-z_.-]{1,200}$`)
)

// File is a statement file kept on disk.
type File struct {
	MerchantID string `json:"merchant_id"`
	BillType   string `json:"bill_type"`
	FileDate   string `json:"file_date"`
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`
	// Checked is "sha-256" when the upstream's digest was verified, "size"
	// when only the length could be.
	Checked      string    `json:"checked"`
	DownloadedAt time.Time `json:"downloaded_at"`
	// Path is where the file is on disk.
	Path string `json:"-"`
}

// Outcome is what fetching one bill type did.
type Outcome struct {
	BillType string `json:"bill_type"`
	FileDate string `json:"file_date"`
	Files    []File `json:"files"`
	// State is "downloaded", "kept" (already there), "pending" (not ready
	// upstream) or "failed".
	State string `json:"state"`
	Err   error  `json:"-"`
}

// Progress reports a download under way: bytes present and total (-1
// when unknown).
type Progress func(billType, name string, done, total int64)

// NormalizeDate checks fileDate for billType: yyyyMMdd for a daily bill;
// yyyyMM (or any day of the month) for a monthly one, returned as yyyyMM.
func NormalizeDate(billType, fileDate string) (string, error) {
	if !slices.Contains(nkp.BillTypes, billType) {
		return "", fmt.Errorf("bill type %q is not one of %v", billType, nkp.BillTypes)
	}
	if Monthly(billType) {
		v := fileDate
		if len(v) == 8 {
			v = v[:6]
		}
		if _, err := time.Parse("200601", v); err != nil || len(v) != 6 {
			return "", fmt.Errorf("%s needs a month, yyyyMM", billType)
		}
		return v, nil
	}
	if _, err := time.Parse(nkp.DateLayout, fileDate); err != nil || len(fileDate) != 8 {
		return "", fmt.Errorf("%s needs a day, yyyyMMdd", billType)
	}
	return fileDate, nil
}

// Fetch asks for the files of each bill type for fileDate and downloads
// those not kept yet. Each bill type's outcome is reported apart: one that
// fails or is not ready does not stop the others. The error is non-nil
// only when fileDate or a bill type is invalid.
func (a *Archive) Fetch(ctx context.Context, fileDate string, bills []string, progress Progress) ([]Outcome, error) {
	out := make([]Outcome, 0, len(bills))
	for _, b := range bills {
		if _, err := NormalizeDate(b, fileDate); err != nil {
			return nil, fmt.Errorf("statements: %w", err)
		}
	}
	for _, b := range bills {
		date, _ := NormalizeDate(b, fileDate)
		o := Outcome{BillType: b, FileDate: date}
		files, state, err := a.fetchOne(ctx, b, date, false, progress)
		o.Files, o.State, o.Err = files, state, err
		if err != nil && errors.Is(err, ErrNotReady) {
			o.State = "pending"
		} else if err != nil {
			o.State = "failed"
		}
		out = append(out, o)
	}
	return out, nil
}

// Ensure returns the kept files of a bill type and date, fetching them
// first when they are not kept.
func (a *Archive) Ensure(ctx context.Context, billType, fileDate string) ([]File, error) {
	date, err := NormalizeDate(billType, fileDate)
	if err != nil {
		return nil, fmt.Errorf("statements: %w", err)
	}
	files, _, err := a.fetchOne(ctx, billType, date, false, nil)
	return files, err
}

// Refetch downloads the files of a bill type and date again, whether they
// are kept or not, and keeps the new ones: for a statement the upstream
// issued anew.
func (a *Archive) Refetch(ctx context.Context, billType, fileDate string) ([]File, error) {
	date, err := NormalizeDate(billType, fileDate)
	if err != nil {
		return nil, fmt.Errorf("statements: %w", err)
	}
	files, _, err := a.fetchOne(ctx, billType, date, true, nil)
	return files, err
}

// Kept returns the files of a bill type and date already on disk, or
// ErrNotFound.
func (a *Archive) Kept(billType, fileDate string) ([]File, error) {
	date, err := NormalizeDate(billType, fileDate)
	if err != nil {
		return nil, fmt.Errorf("statements: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.readManifest(date)
	files := a.keptLocked(m, billType, date)
	if files == nil {
		return nil, fmt.Errorf("%s %s: %w", billType, date, ErrNotFound)
	}
	return files, nil
}

func (a *Archive) fetchOne(ctx context.Context, billType, date string, again bool, progress Progress) ([]File, string, error) {
	type result struct {
		files []File
		state string
	}
	v, err, _ := a.flight.Do(billType+"/"+date+"/"+strconv.FormatBool(again), func() (any, error) {
		if !again {
			a.mu.Lock()
			kept := a.keptLocked(a.readManifest(date), billType, date)
			a.mu.Unlock()
			if kept != nil {
				return result{kept, "kept"}, nil
			}
		}
		files, err := a.download1(ctx, billType, date, progress)
		return result{files, "downloaded"}, err
	})
	if err != nil {
		return nil, "", err
	}
	r := v.(result)
	return r.files, r.state, nil
}

// download1 asks filequery for the bill and downloads every file named.
func (a *Archive) download1(ctx context.Context, billType, date string, progress Progress) ([]File, error) {
	now := a.cfg.Now()
	if a.cfg.Upstream == nil {
		return nil, errors.New("statements: no upstream to ask")
	}
	resp, err := a.cfg.Upstream.FileQuery(ctx, nkp.FileQueryRequest{
		ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: a.cfg.MerchantID, FileDate: date, BillType: billType,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: filequery %s %s: %w", ErrFetch, billType, date, err)
	}
	if !resp.Accepted() {
		return nil, fmt.Errorf("%w: filequery %s %s: upstream refused: %s %s", ErrFetch, billType, date, resp.RespCode, resp.RespDesc)
	}
	for _, t := range resp.TaskDetails {
		if (t.BillType == "" || t.BillType == billType) && t.TaskStat != nkp.StatSuccess {
			return nil, fmt.Errorf("%s %s: task_stat %s: %w", billType, date, t.TaskStat, ErrNotReady)
		}
	}
	var details []nkp.FileDetail
	for _, fd := range resp.FileDetails {
		if fd.BillType == "" || fd.BillType == billType {
			details = append(details, fd)
		}
	}
	if len(details) == 0 {
		return nil, fmt.Errorf("%s %s: no file named: %w", billType, date, ErrNotReady)
	}
	dir := a.dir(date)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("statements: %w", err)
	}
	var files []File
	for _, fd := range details {
		if !namePattern.MatchString(fd.FileName) || fd.FileName == "manifest.json" {
			return nil, fmt.Errorf("%s %s: refusing file name %q", billType, date, fd.FileName)
		}
		dest := filepath.Join(dir, fd.FileName)
		var report func(done, total int64)
		if progress != nil {
			name := fd.FileName
			report = func(done, total int64) { progress(billType, name, done, total) }
		}
		d, err := a.download(ctx, fd.DownloadURL, dest, report)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s: %w", ErrFetch, billType, date, err)
		}
		files = append(files, File{MerchantID: a.cfg.MerchantID, BillType: billType, FileDate: date, Name: fd.FileName,
			Size: d.size, SHA256: d.sha256, Checked: d.checked, DownloadedAt: a.cfg.Now().UTC(), Path: dest})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.readManifest(date)
	m.Bills[billType] = files
	if err := a.writeManifest(date, m); err != nil {
		return nil, err
	}
	return a.withPaths(files, date), nil
}

func (a *Archive) dir(date string) string {
	return filepath.Join(a.cfg.Dir, a.cfg.MerchantID, date)
}

// manifest lists the files kept for one merchant and file date.
type manifest struct {
	Bills map[string][]File `json:"bills"`
}

func (a *Archive) readManifest(date string) manifest {
	m := manifest{Bills: map[string][]File{}}
	b, err := os.ReadFile(filepath.Join(a.dir(date), "manifest.json"))
	if err == nil {
		if err := json.Unmarshal(b, &m); err != nil {
			a.log.Warn("statement manifest unreadable; its files will be fetched again", "dir", a.dir(date), "error", err)
			m = manifest{Bills: map[string][]File{}}
		}
	}
	if m.Bills == nil {
		m.Bills = map[string][]File{}
	}
	return m
}

// writeManifest replaces the manifest atomically.
func (a *Archive) writeManifest(date string, m manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("statements: encode manifest: %w", err)
	}
	path := filepath.Join(a.dir(date), "manifest.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("statements: write manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("statements: write manifest: %w", err)
	}
	return nil
}

// keptLocked returns the manifest's files of a bill when every one is on
// disk with its recorded size; nil otherwise.
func (a *Archive) keptLocked(m manifest, billType, date string) []File {
	files, ok := m.Bills[billType]
	if !ok || len(files) == 0 {
		return nil
	}
	files = a.withPaths(files, date)
	for _, f := range files {
		st, err := os.Stat(f.Path)
		if err != nil || st.Size() != f.Size {
			return nil
		}
	}
	return files
}

func (a *Archive) withPaths(files []File, date string) []File {
	out := slices.Clone(files)
	for i := range out {
		out[i].Path = filepath.Join(a.dir(date), out[i].Name)
	}
	return out
}

// List returns every kept file of a file date, ordered by bill type and
// name.
func (a *Archive) List(fileDate string) []File {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.readManifest(fileDate)
	var out []File
	for b := range m.Bills {
		out = append(out, a.keptLocked(m, b, fileDate)...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].BillType != out[j].BillType {
			return out[i].BillType < out[j].BillType
		}
		return out[i].Name < out[j].Name
	})
	return out
}
