package reconcile

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// sorter sorts records (string slices whose first element is the key) in
// bounded memory: records are kept until chunk of them are held, then
// sorted and written to a temporary run file; Sorted merges the runs. The
// memory used is about chunk records, whatever the number sorted.
type sorter struct {
	dir   string
	chunk int
	buf   [][]string
	runs  []string
	n     int
}

func newSorter(dir string, chunk int) *sorter {
	return &sorter{dir: dir, chunk: chunk}
}

// Add adds a record; rec is kept, so the caller must not change it.
func (s *sorter) Add(rec []string) error {
	s.buf = append(s.buf, rec)
	s.n++
	if len(s.buf) >= s.chunk {
		return s.spill()
	}
	return nil
}

func sortRecords(recs [][]string) {
	slices.SortStableFunc(recs, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
}

func (s *sorter) spill() error {
	sortRecords(s.buf)
	f, err := os.CreateTemp(s.dir, "run-*.bin")
	if err != nil {
		return fmt.Errorf("external sort: %w", err)
	}
	w := bufio.NewWriterSize(f, 256<<10)
	for _, r := range s.buf {
		writeRecord(w, r)
	}
	err = errors.Join(w.Flush(), f.Close())
	if err != nil {
		return fmt.Errorf("external sort: write run: %w", err)
	}
	s.runs = append(s.runs, f.Name())
	clear(s.buf)
	s.buf = s.buf[:0]
	return nil
}

func writeRecord(w *bufio.Writer, rec []string) {
	var tmp [binary.MaxVarintLen64]byte
	w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(rec)))])
	for _, f := range rec {
		w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(f)))])
		w.WriteString(f)
	}
}

func readRecord(r *bufio.Reader) ([]string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > 1<<10 {
		return nil, errors.New("external sort: corrupt run")
	}
	rec := make([]string, n)
	for i := range rec {
		l, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		if l > 1<<20 {
			return nil, errors.New("external sort: corrupt run")
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		rec[i] = string(b)
	}
	return rec, nil
}

// Len returns the number of records added.
func (s *sorter) Len() int { return s.n }

// Sorted returns the records in key order (equal keys in the order they
// were added). Call Close when done.
func (s *sorter) Sorted() (*sortedStream, error) {
	if len(s.runs) == 0 {
		sortRecords(s.buf)
		return &sortedStream{mem: s.buf}, nil
	}
	if len(s.buf) > 0 {
		if err := s.spill(); err != nil {
			return nil, err
		}
	}
	st := &sortedStream{}
	for i, name := range s.runs {
		f, err := os.Open(name)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("external sort: %w", err)
		}
		r := &run{f: f, r: bufio.NewReaderSize(f, 64<<10), order: i}
		st.files = append(st.files, f)
		if err := r.advance(); err != nil {
			st.Close()
			return nil, err
		}
		if r.cur != nil {
			st.h = append(st.h, r)
		}
	}
	heap.Init(&st.h)
	return st, nil
}

// Close removes the run files.
func (s *sorter) Close() {
	for _, r := range s.runs {
		_ = os.Remove(r)
	}
	s.runs = nil
	s.buf = nil
}

type run struct {
	f     *os.File
	r     *bufio.Reader
	cur   []string
	order int
}

func (r *run) advance() error {
	rec, err := readRecord(r.r)
	if errors.Is(err, io.EOF) {
		r.cur = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("external sort: read run: %w", err)
	}
	r.cur = rec
	return nil
}

type runHeap []*run

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	if c := strings.Compare(h[i].cur[0], h[j].cur[0]); c != 0 {
		return c < 0
	}
	return h[i].order < h[j].order
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*run)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// sortedStream yields sorted records one at a time.
type sortedStream struct {
	mem   [][]string
	h     runHeap
	files []*os.File
}

// Next returns the next record, or nil at the end.
func (s *sortedStream) Next() ([]string, error) {
	if s.files == nil {
		if len(s.mem) == 0 {
			return nil, nil
		}
		rec := s.mem[0]
		s.mem[0] = nil
		s.mem = s.mem[1:]
		return rec, nil
	}
	if len(s.h) == 0 {
		return nil, nil
	}
	top := s.h[0]
	rec := top.cur
	if err := top.advance(); err != nil {
		return nil, err
	}
	if top.cur == nil {
		heap.Pop(&s.h)
	} else {
		heap.Fix(&s.h, 0)
	}
	return rec, nil
}

// Close closes the run files.
func (s *sortedStream) Close() {
	for _, f := range s.files {
		_ = f.Close()
	}
}
