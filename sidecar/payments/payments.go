// Package payments is the sidecar's business logic for payments and
// refunds: create, read, refresh, close and refund. It knows nothing of
// HTTP; the app API decodes a request, calls a Service and encodes what
// it returns, mapping each Error's Code to its own error code and status.
//
// Invariants:
//
//   - The ledger is the only writer of payment and refund state. This
//     package reads the store and hands the ledger what the upstream
//     answered, each answer read by the ledger's one function for its
//     kind (ledger.FromOrder, FromPaymentQuery, FromClose, FromRefund,
//     FromRefundQuery).
//   - A payment is stored, with the record of its order, before the
//     order is sent; a refund likewise. A retry after a lost answer sends
//     the very same order under the same req_seq_id, which the upstream
//     books once, so no retry can make a second charge.
//   - Bad input is refused before anything is stored or sent.
//   - A repeated create answers the payment as it really stands and
//     never with a refusal the upstream did not make: its pay parameters
//     when it can still be paid (built again from the stored answer, or,
//     when no answer ever arrived, from a new order that replaces the
//     lost one once the upstream has closed it), its final state
//     otherwise, or Outcome.Pending when the parameters cannot be had yet.
package payments

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// Upstream is the part of the upstream client the service uses: a signed
// call whose answer is verified, in NKP field names (*nkp.Client
// implements it).
type Upstream interface {
	Call(ctx context.Context, path string, data map[string]any) (map[string]any, error)
}

// Flows gives access to the flow plugins by name.
type Flows interface {
	// Flow returns the named flow, or an error that wraps
	// pluginhost.ErrUnknownFlow or pluginhost.ErrUnavailable.
	Flow(name string) (plugin.Flow, error)
	// Infos describes the running flows.
	Infos() []plugin.Info
}

// Config configures a Service. Zero durations take the defaults named.
type Config struct {
	// MerchantID is the default huifu_id.
	MerchantID string
	// Merchants are the other merchants (huifu_ids) a service provider
	// trades for. When any is listed, a request naming a merchant that is
	// neither MerchantID nor listed is refused with CodeUnknownMerchant.
	Merchants []string
	// NotifyURL is sent upstream as notify_url.
	NotifyURL string
	// MaxAmountFen bounds an amount; nkp.MaxFen when zero.
	MaxAmountFen int64
	// FirstQueryAfter is when an unfinished payment or refund is first
	// queried. Default 15 s. SetFirstQueryAfter changes it while the
	// service runs.
	FirstQueryAfter time.Duration
	// InFlight bounds how long one send of an order can take: at least
	// the upstream call timeout. A twin request inside it is told to
	// retry; after it, a send that never ended counts as lost. Default
	// 20 s.
	InFlight time.Duration
	// RefreshInterval is the least time between two upstream queries a
	// read makes for the same unfinished payment. Default 2 s.
	RefreshInterval time.Duration
	// RefreshTimeout bounds the upstream query a read makes; the stored
	// state is answered when it runs out. Default 3 s.
	RefreshTimeout time.Duration
}

// Deps are the parts a Service is built on.
type Deps struct {
	// Store is read; every write goes through Ledger.
	Store    store.Store
	Ledger   *ledger.Ledger
	Upstream Upstream
	Flows    Flows
	// Telemetry is the service's logger and clock.
	Telemetry telemetry.Bundle
}

// Service runs payments and refunds. It is safe for concurrent use.
type Service struct {
	cfg   Config
	st    store.Store
	led   *ledger.Ledger
	up    Upstream
	flows Flows
	tel   telemetry.Bundle

	// orders serializes, within this process, the requests that work on
	// one payment's order (a create and its retries); across replicas
	// OrderRecord.InFlight and the store's checks keep them apart.
	orders keyLocks
	// refunds serializes refund creation per payment, so that two
	// concurrent refunds cannot both pass the remaining-amount check.
	// Across replicas the upstream's own check is the last guard.
	refunds   keyLocks
	refreshes refreshGate

	firstQuery atomic.Int64 // a time.Duration: FirstQueryAfter
}

// New returns a Service.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Store == nil || d.Ledger == nil || d.Upstream == nil || d.Flows == nil {
		return nil, errors.New("payments: store, ledger, upstream and flows are required")
	}
	if cfg.MaxAmountFen <= 0 {
		cfg.MaxAmountFen = int64(nkp.MaxFen)
	}
	setDefault(&cfg.FirstQueryAfter, 15*time.Second)
	setDefault(&cfg.InFlight, 20*time.Second)
	setDefault(&cfg.RefreshInterval, 2*time.Second)
	setDefault(&cfg.RefreshTimeout, 3*time.Second)
	s := &Service{
		cfg: cfg, st: d.Store, led: d.Ledger, up: d.Upstream, flows: d.Flows, tel: d.Telemetry.WithDefaults(),
		refreshes: refreshGate{interval: cfg.RefreshInterval},
	}
	s.SetFirstQueryAfter(cfg.FirstQueryAfter)
	return s, nil
}

// SetFirstQueryAfter changes when a payment or refund created from now on
// is first queried (the reverse query's first step); zero or less means
// the default, 15 s. It is safe to call while requests are served.
func (s *Service) SetFirstQueryAfter(d time.Duration) {
	setDefault(&d, 15*time.Second)
	s.firstQuery.Store(int64(d))
}

// firstQueryAt is when an order created at now is first queried.
func (s *Service) firstQueryAt(now time.Time) time.Time {
	return now.Add(time.Duration(s.firstQuery.Load()))
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func (s *Service) now() time.Time { return s.tel.Now() }

// keyLocks hands out one mutex per key, dropped when nobody holds it.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*lockEntry
}

type lockEntry struct {
	mu   sync.Mutex
	refs int
}

func (l *keyLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*lockEntry{}
	}
	e := l.locks[key]
	if e == nil {
		e = &lockEntry{}
		l.locks[key] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
}

// refreshGate lets a payment be refreshed from the upstream at most once
// per interval, however often a front end polls it.
type refreshGate struct {
	interval time.Duration
	mu       sync.Mutex
	last     map[string]time.Time
}

// maxGateEntries bounds the gate's memory; older entries are dropped
// first when it is full.
const maxGateEntries = 4096

func (g *refreshGate) allow(id string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[string]time.Time{}
	}
	if t, ok := g.last[id]; ok && now.Sub(t) < g.interval {
		return false
	}
	if len(g.last) >= maxGateEntries {
		for k, t := range g.last {
			if now.Sub(t) >= g.interval {
				delete(g.last, k)
			}
		}
		if len(g.last) >= maxGateEntries {
			return false // a polling storm: the reverse query still runs
		}
	}
	g.last[id] = now
	return true
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns a random id with a type prefix, e.g. pay_1x2y….
func newID(prefix string) string {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("paysidecar: crypto/rand failed: " + err.Error())
	}
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// call sends req, a typed request, to path and builds the result of the
// verified answer with build.
func (s *Service) call(ctx context.Context, path string, req any, build func(map[string]any) (ledger.Result, error)) (ledger.Result, error) {
	data, err := nkp.ToMap(req)
	if err != nil {
		return ledger.Result{}, &nkp.CallError{Path: path, Kind: nkp.KindRequest, Err: err}
	}
	answer, err := s.up.Call(ctx, path, data)
	if err != nil {
		return ledger.Result{}, err
	}
	res, err := build(answer)
	if err != nil {
		return ledger.Result{}, &nkp.CallError{Path: path, Kind: nkp.KindDecode, Err: err}
	}
	return res, nil
}
