package sandbox

// Keeping the sandbox's state in a file.
//
// With Config.StateFile set, a Server loads its ledger from the file when
// it starts and writes it back, atomically, whenever it changed: soon
// after each request it answers, every second for changes made in the
// background (auto-settlement, notifications), and when it closes. Each
// write is the whole ledger, so writes are paced: after a write that took
// d, the next waits at least max(100 ms, 10 d), and keeping a ledger of
// many orders costs a bounded share of a CPU however busy the sandbox is
// (requests answered in the pause are in the next write). A
// restarted sandbox therefore knows every order, refund, merchant, code
// and id it handed out before, and its counter goes on where it stopped,
// so an old cashier link opens its old order and never a new one.
//
// The file holds the whole ledger, found by reflection: every field of
// the ledger struct and of everything it reaches is kept, exported or not,
// and pointers shared in memory (an order in several indexes, a refund's
// order) are shared again after loading. Adding state to the sandbox
// therefore needs nothing here:
//
//   - Put it in the ledger struct (or in a type it reaches), initialize
//     any map in newLedger, and guard it with Server.mu like the rest.
//     A file written before the field existed loads with newLedger's value
//     for it.
//   - Use types made of bools, numbers, strings, time.Time (any type with
//     MarshalText and UnmarshalText), structs, pointers, slices, arrays and
//     maps of those. TestLedgerIsPersistable fails for a channel, a
//     function or an interface.
//   - Tag a field `state:"-"` to leave it out (a cache that can be
//     rebuilt); it comes back zero, or as newLedger makes it.
//
// What is in flight is not kept: a notification being sent or an
// auto-settlement waiting when the process stops does not happen after a
// restart (the sidecar's reverse query finds the order's state; an order
// still processing is settled by the controls or the cashier).

import (
	"bytes"
	"context"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"time"
	"unsafe"
)

// stateVersion is written in the file; a file of another version is
// refused rather than half understood.
const stateVersion = 1

// stateFile is the file's layout: the ledger, and the values its pointers
// point to, each once, referenced by index as {"$ref": n}.
type stateFile struct {
	Version int               `json:"version"`
	Objects []json.RawMessage `json:"objects"`
	Ledger  json.RawMessage   `json:"ledger"`
}

// encodeLedger returns the file's content for l.
func encodeLedger(l *ledger) ([]byte, error) {
	e := &stateEncoder{ids: map[ptrKey]int{}}
	root, err := e.encode(reflect.ValueOf(l).Elem())
	if err != nil {
		return nil, err
	}
	rootJSON, err := json.Marshal(root)
	if err != nil {
		return nil, err
	}
	f := stateFile{Version: stateVersion, Ledger: rootJSON, Objects: make([]json.RawMessage, len(e.objects))}
	for i, o := range e.objects {
		if f.Objects[i], err = json.Marshal(o); err != nil {
			return nil, err
		}
	}
	return json.MarshalIndent(f, "", " ")
}

// decodeLedger fills l, made by newLedger, from the file's content.
func decodeLedger(b []byte, l *ledger) error {
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	if f.Version != stateVersion {
		return fmt.Errorf("state version %d, this sandbox reads %d", f.Version, stateVersion)
	}
	d := &stateDecoder{objects: f.Objects, ptrs: make([]reflect.Value, len(f.Objects))}
	return d.decode(f.Ledger, reflect.ValueOf(l).Elem())
}

type ptrKey struct {
	addr uintptr
	typ  reflect.Type
}

type stateEncoder struct {
	ids     map[ptrKey]int
	objects []any
}

// field returns struct field i of v, readable and settable whether or not
// it is exported; v must be addressable.
func field(v reflect.Value, i int) reflect.Value {
	f := v.Field(i)
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// addressable returns v itself when it is addressable, else a copy that is.
func addressable(v reflect.Value) reflect.Value {
	if v.CanAddr() {
		return v
	}
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	return c
}

var (
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func isText(t reflect.Type) bool {
	return t.Implements(textMarshaler) && reflect.PointerTo(t).Implements(textUnmarshaler)
}

func (e *stateEncoder) encode(v reflect.Value) (any, error) {
	t := v.Type()
	if isText(t) {
		b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		return string(b), err
	}
	switch t.Kind() {
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint(), nil
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.String:
		return v.String(), nil
	case reflect.Struct:
		v = addressable(v)
		out := make(map[string]any, t.NumField())
		for i := range t.NumField() {
			sf := t.Field(i)
			if sf.Tag.Get("state") == "-" {
				continue
			}
			x, err := e.encode(field(v, i))
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", t, sf.Name, err)
			}
			out[sf.Name] = x
		}
		return out, nil
	case reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		k := ptrKey{v.Pointer(), t}
		if id, ok := e.ids[k]; ok {
			return map[string]int{"$ref": id}, nil
		}
		id := len(e.objects)
		e.ids[k] = id
		e.objects = append(e.objects, nil)
		x, err := e.encode(v.Elem())
		if err != nil {
			return nil, err
		}
		e.objects[id] = x
		return map[string]int{"$ref": id}, nil
	case reflect.Slice:
		if v.IsNil() {
			return nil, nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return base64.StdEncoding.EncodeToString(v.Bytes()), nil
		}
		fallthrough
	case reflect.Array:
		out := make([]any, v.Len())
		for i := range v.Len() {
			x, err := e.encode(v.Index(i))
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case reflect.Map:
		if v.IsNil() {
			return nil, nil
		}
		type pair struct {
			key  []byte
			k, v any
		}
		pairs := make([]pair, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, err := e.encode(it.Key())
			if err != nil {
				return nil, err
			}
			x, err := e.encode(it.Value())
			if err != nil {
				return nil, err
			}
			kb, err := json.Marshal(k)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, pair{kb, k, x})
		}
		// Sorted by key, so that an unchanged ledger encodes the same.
		sort.Slice(pairs, func(i, j int) bool { return bytes.Compare(pairs[i].key, pairs[j].key) < 0 })
		out := make([][2]any, len(pairs))
		for i, p := range pairs {
			out[i] = [2]any{p.k, p.v}
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot keep a %s in the state file", t)
}

type stateDecoder struct {
	objects []json.RawMessage
	ptrs    []reflect.Value
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// decode sets v, which is addressable and settable, from raw.
func (d *stateDecoder) decode(raw json.RawMessage, v reflect.Value) error {
	t := v.Type()
	if isText(t) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	switch t.Kind() {
	case reflect.Bool:
		var b bool
		err := json.Unmarshal(raw, &b)
		v.SetBool(b)
		return err
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, t.Bits())
		v.SetInt(n)
		return err
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := strconv.ParseUint(string(bytes.TrimSpace(raw)), 10, t.Bits())
		v.SetUint(n)
		return err
	case reflect.Float32, reflect.Float64:
		var f float64
		err := json.Unmarshal(raw, &f)
		v.SetFloat(f)
		return err
	case reflect.String:
		var s string
		err := json.Unmarshal(raw, &s)
		v.SetString(s)
		return err
	case reflect.Struct:
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			fr, ok := fields[sf.Name]
			if !ok || sf.Tag.Get("state") == "-" {
				// Not in the file (written before the field
				// existed): keep what newLedger made.
				continue
			}
			if err := d.decode(fr, field(v, i)); err != nil {
				return fmt.Errorf("%s.%s: %w", t, sf.Name, err)
			}
		}
		return nil
	case reflect.Pointer:
		if isNull(raw) {
			v.SetZero()
			return nil
		}
		var ref struct {
			ID *int `json:"$ref"`
		}
		if err := json.Unmarshal(raw, &ref); err != nil || ref.ID == nil || *ref.ID < 0 || *ref.ID >= len(d.objects) {
			return fmt.Errorf("%s: bad reference %s", t, raw)
		}
		id := *ref.ID
		if p := d.ptrs[id]; p.IsValid() {
			if p.Type() != t {
				return fmt.Errorf("object %d is a %s, not a %s", id, p.Type(), t)
			}
			v.Set(p)
			return nil
		}
		p := reflect.New(t.Elem())
		d.ptrs[id] = p
		v.Set(p)
		return d.decode(d.objects[id], p.Elem())
	case reflect.Slice:
		if isNull(raw) {
			v.SetZero()
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			b, err := base64.StdEncoding.DecodeString(s)
			v.SetBytes(b)
			return err
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			if err := d.decode(it, s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Array:
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		if len(items) != t.Len() {
			return fmt.Errorf("%s: %d elements", t, len(items))
		}
		for i, it := range items {
			if err := d.decode(it, v.Index(i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if isNull(raw) {
			v.SetZero()
			return nil
		}
		var pairs [][2]json.RawMessage
		if err := json.Unmarshal(raw, &pairs); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		m := reflect.MakeMapWithSize(t, len(pairs))
		for _, p := range pairs {
			k := reflect.New(t.Key()).Elem()
			if err := d.decode(p[0], k); err != nil {
				return err
			}
			x := reflect.New(t.Elem()).Elem()
			if err := d.decode(p[1], x); err != nil {
				return err
			}
			m.SetMapIndex(k, x)
		}
		v.Set(m)
		return nil
	}
	return fmt.Errorf("cannot keep a %s in the state file", t)
}

// persistable reports the first type reachable from t that the state file
// cannot hold, with the path to it.
func persistable(t reflect.Type, path string, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	if isText(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		return nil
	case reflect.Struct:
		for i := range t.NumField() {
			sf := t.Field(i)
			if sf.Tag.Get("state") == "-" {
				continue
			}
			if err := persistable(sf.Type, path+"."+sf.Name, seen); err != nil {
				return err
			}
		}
		return nil
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return persistable(t.Elem(), path+"[]", seen)
	case reflect.Map:
		if err := persistable(t.Key(), path+"{key}", seen); err != nil {
			return err
		}
		return persistable(t.Elem(), path+"{}", seen)
	}
	return fmt.Errorf("%s is a %s, which the state file cannot hold; keep it out of the ledger or tag it `state:\"-\"`", path, t)
}

// writeFileAtomic replaces path with b: a reader, or a crash, sees the old
// content or the new, never a mix.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// loadState replaces the ledger with the one in the state file, if there
// is one; it reports whether there was.
func (s *Server) loadState() (bool, error) {
	b, err := os.ReadFile(s.cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sandbox: read state: %w", err)
	}
	l := newLedger()
	if err := decodeLedger(b, &l); err != nil {
		return false, fmt.Errorf("sandbox: load state from %s (remove the file to start afresh): %w", s.cfg.StateFile, err)
	}
	s.l = l
	return true, nil
}

// saveState writes the ledger to the state file when it changed since the
// last write.
func (s *Server) saveState() error {
	s.mu.Lock()
	b, err := encodeLedger(&s.l)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sandbox: encode state: %w", err)
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if bytes.Equal(b, s.saved) {
		return nil
	}
	if err := writeFileAtomic(s.cfg.StateFile, b); err != nil {
		return fmt.Errorf("sandbox: write state: %w", err)
	}
	s.saved = b
	return nil
}

// changed asks the state keeper to save soon; it never blocks.
func (s *Server) changed() {
	if s.cfg.StateFile == "" {
		return
	}
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// The pacing of state file writes: after a write that took d, the next
// waits at least max(minSaveGap, saveGapFactor×d).
const (
	minSaveGap    = 100 * time.Millisecond
	saveGapFactor = 10
)

// keepState saves the state after changes and every second until ctx
// ends, paced (see minSaveGap); it runs in a goroutine owned by the
// Server. Close writes what changed in the last pause.
func (s *Server) keepState(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
		case <-tick.C:
		}
		began := time.Now()
		if err := s.saveState(); err != nil {
			s.log.Error("sandbox: state not saved", "file", s.cfg.StateFile, "error", err)
		}
		pause.Reset(max(minSaveGap, saveGapFactor*time.Since(began)))
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
	}
}
