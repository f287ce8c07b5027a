// Package store defines the durable state of the sidecar: payments,
// refunds, idempotency records, received notifications, the outbox of
// events delivered to the application, and reconciliation runs with their
// differences.
//
// One implementation (package store/sqlstore, on database/sql) serves two
// engines: embedded SQLite (package store/sqlite, the default, one file
// and zero set-up) and PostgreSQL (package store/postgres, for several
// replicas sharing state); each of those packages opens its engine and
// supplies the dialect. Package store/storetest holds the conformance
// suite both must pass.
//
// Every state change that must not be lost together with another is one
// call here, and one transaction inside: a payment's final state and the
// event announcing it are written together or not at all. A write call
// returns only once its transaction has committed durably; concurrent
// calls may share that transaction (group commit) but never each other's
// failures.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors returned by every implementation. Callers test them with
// errors.Is.
var (
	// ErrNotFound means the object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique key (out_trade_no, out_refund_no,
	// req_seq_id) is already taken.
	ErrConflict = errors.New("conflict")
	// ErrLeaseLost means the caller no longer owns the claimed work.
	ErrLeaseLost = errors.New("lease lost")
	// ErrInvalid means the arguments of a call break a rule of this
	// package (a missing key, an unknown state, a negative amount,
	// malformed JSON); the call changed nothing.
	ErrInvalid = errors.New("invalid argument")
)

// Status is the lifecycle state of a payment or a refund. It only moves
// forward: pending → processing → one of the final states.
type Status string

// The states. A payment is pending from the moment it is stored until the
// upstream has accepted it.
const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusClosed     Status = "closed"
)

// Final reports whether s is a final state.
func (s Status) Final() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusClosed
}

// Rank orders states so that a transition can be checked to move forward.
func (s Status) Rank() int {
	switch s {
	case StatusPending:
		return 0
	case StatusProcessing:
		return 1
	case StatusSucceeded, StatusFailed, StatusClosed:
		return 2
	}
	return -1
}

// CanMoveTo reports whether a transition from s to next moves forward. A
// final state never changes; a state never moves back.
func (s Status) CanMoveTo(next Status) bool {
	if s.Final() {
		return false
	}
	return next.Rank() > s.Rank()
}

// Payment is one order placed upstream. Amounts are integer fen.
type Payment struct {
	ID           string
	MerchantID   string // huifu_id of the merchant doing the trade
	OutTradeNo   string // the application's own order number, unique per merchant
	Flow         string // name of the flow plugin
	TradeType    string // T_JSAPI, T_MINIAPP, A_NATIVE
	AmountFen    int64
	Description  string
	ReqDate      string // yyyyMMdd of the upstream order
	ReqSeqID     string // the sidecar-generated serial, unique per merchant per day
	NkpSeqID     string // the upstream's global serial
	PartyOrderID string
	OutTransID   string
	Status       Status
	TransStat    string // last trans_stat seen upstream
	// RequestHash fingerprints the creating request so a repeated
	// out_trade_no with another body can be told apart from a retry.
	RequestHash    string
	PayParams      json.RawMessage // front-end parameters returned at creation
	Metadata       json.RawMessage // the application's own key/values
	Buyer          json.RawMessage // openid / app id used for the order
	RefundedFen    int64           // total of succeeded refunds
	ExpiresAt      time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	FinishedAt     time.Time // zero until final
	NextQueryAt    time.Time // zero when no reverse query is due
	QueryAttempts  int
	LastError      string
	UpstreamFields json.RawMessage // last verified upstream data for this order
}

// Refund is one refund of a payment.
type Refund struct {
	ID             string
	PaymentID      string
	MerchantID     string
	OutRefundNo    string // unique per merchant
	AmountFen      int64
	Reason         string
	ReqDate        string
	ReqSeqID       string
	NkpSeqID       string
	Status         Status
	TransStat      string
	RequestHash    string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	FinishedAt     time.Time
	NextQueryAt    time.Time
	QueryAttempts  int
	LastError      string
	UpstreamFields json.RawMessage
}

// Checkout is a payment offered before any buyer is known: the
// application creates it, hands its launch links to a page or an app, and
// the buyer pays it once, which places the payment PaymentID.
type Checkout struct {
	ID          string
	MerchantID  string // huifu_id of the merchant doing the trade
	OutTradeNo  string // the application's own order number, unique per merchant
	Flow        string // name of the flow plugin that opens and pays it
	AmountFen   int64
	Description string
	// Links are the launch links the flow built, as JSON.
	Links json.RawMessage
	// PaymentID is the payment placed when the checkout was paid; empty
	// until then.
	PaymentID string
	// ClaimedAt is when a buyer began to pay; zero while the checkout is
	// open. A claimed checkout cannot be paid again.
	ClaimedAt time.Time
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Transition is a forward move of a payment or refund, applied atomically
// with the event that announces it.
type Transition struct {
	// To is the new state. A transition that would not move forward is
	// ignored and reported as not applied.
	To        Status
	TransStat string
	NkpSeqID  string // set when non-empty
	// PartyOrderID and OutTransID are set when non-empty.
	PartyOrderID   string
	OutTransID     string
	UpstreamFields json.RawMessage // set when non-nil
	// At is when the upstream's answer was seen; zero means now.
	At time.Time
	// Event, when non-nil, is inserted into the outbox in the same
	// transaction if the transition is applied.
	Event *Event
}

// EventStatus is the delivery state of an outbox event.
type EventStatus string

// The delivery states.
const (
	EventPending   EventStatus = "pending"
	EventDelivered EventStatus = "delivered"
	EventDead      EventStatus = "dead"
)

// Event is a message for the application, kept in the outbox until it is
// delivered or declared dead. Its ID is derived from the object and the
// state it announces, so a notification repeated by the upstream and the
// same result found by a reverse query produce the same ID, and inserting it
// twice is a no-op.
type Event struct {
	ID       string
	Type     string // payment.succeeded, refund.failed, …
	ObjectID string // payment or refund id
	// OrderKey groups events that must be delivered in order: the payment
	// id for a payment and all its refunds.
	OrderKey string
	Payload  json.RawMessage // the body delivered to the application
	// Seq is assigned by the store on insert and increases within the
	// store; delivery order within an OrderKey follows it.
	Seq           int64
	Status        EventStatus
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   time.Time
}

// Claim is a batch of events leased to one worker. While the lease holds,
// no other worker (in this process or another replica) gets the same
// events.
type Claim struct {
	Owner      string
	LeaseUntil time.Time
}

// Attempt is the outcome of one delivery attempt.
type Attempt struct {
	EventID   string
	Owner     string
	Delivered bool
	// Dead moves the event to the dead-letter state (retries exhausted).
	Dead bool
	// NextAttemptAt schedules the next attempt when neither Delivered nor
	// Dead; zero means at once. Delivered and Dead together are invalid.
	NextAttemptAt time.Time
	Error         string
	// At is when the attempt ended; zero means now.
	At time.Time
}

// IdemState is the state of an idempotency key after Begin.
type IdemState string

// The idempotency states returned by BeginIdempotency.
const (
	// IdemNew means the caller now owns the key and must Finish it.
	IdemNew IdemState = "new"
	// IdemInProgress means another request with the key is running.
	IdemInProgress IdemState = "in_progress"
	// IdemDone means a stored answer exists; replay it.
	IdemDone IdemState = "done"
	// IdemMismatch means the key was used with another request body.
	IdemMismatch IdemState = "mismatch"
)

// IdemRecord is the stored answer for an idempotency key.
type IdemRecord struct {
	Scope       string // e.g. "POST /v1/payments"
	Key         string
	RequestHash string
	State       IdemState
	StatusCode  int
	Body        []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Notification is a verified notification as received, kept for audit and
// deduplication.
type Notification struct {
	// ID is the SHA-256 of the raw resp_data, hex.
	ID         string
	ReqSeqID   string
	Kind       string // "payment" or "refund"
	ObjectID   string // payment or refund id, when matched
	RespData   string
	ReceivedAt time.Time
}

// NotificationResult is the outcome of ApplyNotification.
type NotificationResult struct {
	// New reports whether this call recorded the notification; false
	// means a notification with its ID was stored before.
	New bool
	// Applied reports whether the transition moved the object forward.
	Applied bool
	// Payment is the payment after the call when the notification's Kind
	// is "payment"; Refund is the refund after the call when it is
	// "refund". The other is zero.
	Payment Payment
	Refund  Refund
}

// Store is the durable state of the sidecar. All its methods are safe for
// concurrent use, by goroutines of one process and, for implementations that
// several replicas share, by several processes.
//
// Times are stored in UTC with microsecond precision; values read back are
// in UTC. A zero time.Time stands for "not set" and is stored as NULL.
// Methods that take an explicit now use it instead of the clock, so that
// leases and due times are decided by the caller.
type Store interface {
	// Migrate applies the versioned schema migrations that are missing. It
	// is safe to call concurrently from several replicas.
	Migrate(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
	// Ping reports whether the store is reachable, for /readyz.
	Ping(ctx context.Context) error

	// CreatePayment inserts p. It returns ErrConflict when the merchant
	// already has a payment with p.OutTradeNo or p.ReqSeqID on p.ReqDate,
	// or a payment with p.ID exists. ID, MerchantID, OutTradeNo, ReqDate
	// and ReqSeqID are required and AmountFen must be positive
	// (ErrInvalid). An empty Status is stored as pending; zero CreatedAt
	// and UpdatedAt are set to the current time and written back to p.
	CreatePayment(ctx context.Context, p *Payment) error
	// GetPayment returns the payment with the id, or ErrNotFound.
	GetPayment(ctx context.Context, id string) (Payment, error)
	// GetPaymentByOutTradeNo returns the merchant's payment with the
	// application's order number, or ErrNotFound.
	GetPaymentByOutTradeNo(ctx context.Context, merchantID, outTradeNo string) (Payment, error)
	// GetPaymentByReqSeqID returns the merchant's payment with the
	// upstream serial of the day, or ErrNotFound.
	GetPaymentByReqSeqID(ctx context.Context, merchantID, reqDate, reqSeqID string) (Payment, error)
	// GetPaymentByNkpSeqID returns the merchant's payment with the
	// upstream's global serial (nkp_seq_id / hf_seq_id), or ErrNotFound;
	// an empty serial matches nothing.
	GetPaymentByNkpSeqID(ctx context.Context, merchantID, nkpSeqID string) (Payment, error)
	// GetPaymentByPartyOrderID returns the merchant's payment with the
	// channel's order id (party_order_id), or ErrNotFound; an empty id
	// matches nothing.
	GetPaymentByPartyOrderID(ctx context.Context, merchantID, partyOrderID string) (Payment, error)
	// UpdatePaymentAccepted records the upstream's acceptance of an order:
	// the serials, the pay parameters and the move from pending to
	// processing (or further, following t). The serials are set when
	// non-empty and payParams when non-nil, whatever the state (the
	// notification may have finished the payment before the synchronous
	// answer was handled); t is applied as by TransitionPayment, and an
	// empty t.To records the serials only. The bool reports whether t was
	// applied.
	UpdatePaymentAccepted(ctx context.Context, id string, nkpSeqID, partyOrderID string, payParams json.RawMessage, t Transition) (Payment, bool, error)
	// ReplaceOrder moves the payment id from its upstream order
	// (fromDate, fromSeq) to a new one (toDate, toSeq), when the old
	// order's answer, and its pay parameters with it, was lost: req_date
	// and req_seq_id become the new ones, nkp_seq_id and party_order_id
	// are cleared and payParams is stored. It applies only while the
	// payment still stands for the old order and is not final; otherwise
	// it returns ErrConflict, as it does when the merchant already has a
	// payment with the new serial. toDate and toSeq are required and
	// payParams must be JSON (ErrInvalid); an unknown payment is
	// ErrNotFound. It returns the payment after the call.
	ReplaceOrder(ctx context.Context, id, fromDate, fromSeq, toDate, toSeq string, payParams json.RawMessage, at time.Time) (Payment, error)
	// TransitionPayment applies t if it moves the payment forward, and
	// inserts t.Event with it. It returns the payment after the call and
	// whether t was applied. A transition that is not applied changes
	// nothing and inserts no event. A transition to a final state sets
	// FinishedAt and stops reverse queries (NextQueryAt becomes zero).
	// An event with an empty ObjectID or OrderKey gets the payment id.
	TransitionPayment(ctx context.Context, id string, t Transition) (Payment, bool, error)
	// RecordPaymentError stores the last error seen for a payment.
	RecordPaymentError(ctx context.Context, id, msg string, at time.Time) error

	// CreateRefund inserts r. It returns ErrConflict when the merchant
	// already has a refund with r.OutRefundNo or r.ReqSeqID on r.ReqDate,
	// or a refund with r.ID exists, and ErrNotFound when r.PaymentID does
	// not exist. The defaults and required fields follow CreatePayment.
	CreateRefund(ctx context.Context, r *Refund) error
	// GetRefund returns the refund with the id, or ErrNotFound.
	GetRefund(ctx context.Context, id string) (Refund, error)
	// GetRefundByOutRefundNo returns the merchant's refund with the
	// application's refund number, or ErrNotFound.
	GetRefundByOutRefundNo(ctx context.Context, merchantID, outRefundNo string) (Refund, error)
	// GetRefundByReqSeqID returns the merchant's refund with the upstream
	// serial of the day, or ErrNotFound.
	GetRefundByReqSeqID(ctx context.Context, merchantID, reqDate, reqSeqID string) (Refund, error)
	// ListRefunds lists the refunds of a payment, oldest first; an
	// unknown payment has none.
	ListRefunds(ctx context.Context, paymentID string) ([]Refund, error)
	// TransitionRefund is TransitionPayment for refunds; a refund moving
	// to succeeded adds its amount to the payment's RefundedFen in the
	// same transaction. An event with an empty OrderKey gets the payment
	// id, so that a payment's events and its refunds' go out in order.
	TransitionRefund(ctx context.Context, id string, t Transition) (Refund, bool, error)

	// CreateCheckout inserts c. It returns ErrConflict when the merchant
	// already has a checkout with c.OutTradeNo or a checkout with c.ID
	// exists. ID, MerchantID, OutTradeNo, Flow and ExpiresAt are required
	// and AmountFen must be positive (ErrInvalid); zero CreatedAt and
	// UpdatedAt are set to the current time and written back to c.
	CreateCheckout(ctx context.Context, c *Checkout) error
	// GetCheckout returns the checkout with the id, or ErrNotFound.
	GetCheckout(ctx context.Context, id string) (Checkout, error)
	// ClaimCheckout marks the checkout as being paid at now, when it is
	// neither claimed nor expired at now; of concurrent claims exactly one
	// succeeds. It returns the checkout after the call, and ErrConflict
	// (with the checkout as it stands) when it is claimed or expired;
	// an unknown checkout is ErrNotFound.
	ClaimCheckout(ctx context.Context, id string, now time.Time) (Checkout, error)
	// ReleaseCheckout undoes the claim made at claimedAt when the attempt
	// to pay had no effect, so that the buyer may try again. It changes
	// nothing when the checkout has a payment or another claim.
	ReleaseCheckout(ctx context.Context, id string, claimedAt time.Time) error
	// SetCheckoutPayment records the payment a claimed checkout became.
	// It returns ErrConflict when the checkout is unclaimed or has another
	// payment, ErrNotFound when it does not exist.
	SetCheckoutPayment(ctx context.Context, id, paymentID string, at time.Time) (Checkout, error)

	// ClaimDueQueries leases up to limit unfinished payments and refunds
	// whose NextQueryAt has come, so that one replica queries each. The
	// limit counts both kinds together, the longest due first. A lease
	// ends at c.LeaseUntil or when ScheduleQuery is called.
	ClaimDueQueries(ctx context.Context, c Claim, now time.Time, limit int) ([]Payment, []Refund, error)
	// ScheduleQuery sets the next reverse query of a payment or refund
	// (kind "payment" or "refund"), its attempt count and last error, and
	// releases its lease; a zero next stops querying, and so does a final
	// state, whatever next says.
	ScheduleQuery(ctx context.Context, kind, id string, next time.Time, attempts int, lastError string) error

	// BeginIdempotency looks up or takes the key. lockFor bounds how long
	// an in-progress key blocks twins if its owner dies. A record that
	// expired before now (an answer kept long enough, or the lock of an
	// owner that died) counts as absent and is taken over. Otherwise the
	// result is IdemMismatch when requestHash differs from the stored
	// one, else IdemInProgress or IdemDone with the stored answer.
	BeginIdempotency(ctx context.Context, scope, key, requestHash string, now time.Time, lockFor time.Duration) (IdemRecord, error)
	// FinishIdempotency stores the answer for the key and keeps it until
	// expiresAt. It returns ErrNotFound when the key is not taken and
	// ErrConflict when it already has an answer.
	FinishIdempotency(ctx context.Context, scope, key string, statusCode int, body []byte, expiresAt time.Time) error
	// ReleaseIdempotency forgets an in-progress key whose request had no
	// effect, so that it may be retried. A key that has an answer, or no
	// record, is left as it is.
	ReleaseIdempotency(ctx context.Context, scope, key string) error
	// PurgeIdempotency deletes records that expired before now.
	PurgeIdempotency(ctx context.Context, now time.Time) (int, error)

	// RecordNotification stores n unless a notification with the same ID
	// exists, and reports whether it was new.
	RecordNotification(ctx context.Context, n Notification) (bool, error)
	// ApplyNotification is the one write of a notification that carries a
	// result: in one transaction it records n as RecordNotification does
	// and applies t to the payment or refund that n names (n.Kind
	// "payment" or "refund", n.ObjectID its id) as TransitionPayment or
	// TransitionRefund does, t.Event included. Either both are stored or
	// neither is. t is applied whether or not n is new: a repeated
	// notification carries the same result, and a transition that does not
	// move the object forward changes nothing, so the outcome never
	// depends on what an earlier, interrupted attempt did. n.ID, n.Kind,
	// n.ObjectID and t.To are required (ErrInvalid); an object that does
	// not exist is ErrNotFound. On any error nothing is stored.
	ApplyNotification(ctx context.Context, n Notification, t Transition) (NotificationResult, error)

	// InsertEvent adds e to the outbox unless an event with e.ID exists,
	// and reports whether it was new. ID, Type and a JSON Payload are
	// required. The store sets Seq and Status (pending) and, when zero,
	// CreatedAt (now) and NextAttemptAt (CreatedAt), and writes them back
	// to e when the event is new. An empty OrderKey defaults to ObjectID,
	// or to ID when ObjectID is empty too.
	InsertEvent(ctx context.Context, e *Event) (bool, error)
	// GetEvent returns the event with the id, or ErrNotFound.
	GetEvent(ctx context.Context, id string) (Event, error)
	// ClaimEvents leases up to limit pending events due at now, lowest Seq
	// first. Of each OrderKey only the oldest undelivered event (lowest
	// Seq, pending or dead) is eligible, so events of one payment go out
	// in order; an event behind a dead one waits until the dead one is
	// replayed or delivered. An event whose lease has not ended at now is
	// not eligible.
	ClaimEvents(ctx context.Context, c Claim, now time.Time, limit int) ([]Event, error)
	// CompleteAttempt records the outcome of a delivery attempt by the
	// lease owner, counts the attempt and releases the lease; ErrLeaseLost
	// if the owner no longer holds it (another worker claimed the event
	// after the lease ended, or the attempt was already completed). An
	// owner whose lease ended but whom nobody replaced still holds it, so
	// that a slow delivery is not repeated needlessly.
	CompleteAttempt(ctx context.Context, a Attempt) error
	// CompleteAttempts records the outcomes of several attempts as
	// CompleteAttempt does, in one transaction: a delivery loop's
	// bookkeeping for a batch of attempts costs one write. errs has one
	// entry per attempt, nil when it was recorded, otherwise what
	// CompleteAttempt would have returned for it (ErrInvalid,
	// ErrLeaseLost, ErrNotFound), and such an attempt changes nothing
	// while the others are recorded. err reports a failure of the write
	// as a whole, after which none was recorded.
	CompleteAttempts(ctx context.Context, as []Attempt) (errs []error, err error)
	// ListEvents lists events in a state (any state when status is
	// empty), oldest first, after the given Seq (for paging).
	ListEvents(ctx context.Context, status EventStatus, afterSeq int64, limit int) ([]Event, error)
	// ReplayEvent moves a dead or delivered event back to pending, due at
	// now, with its attempt count reset. A pending event is left as it is;
	// an unknown one is ErrNotFound.
	ReplayEvent(ctx context.Context, id string, now time.Time) error
	// CountEvents counts events by state, for metrics; every state is
	// present in the map, zero included.
	CountEvents(ctx context.Context) (map[EventStatus]int, error)

	// Reconciliations reads the ledger for reconciliation and keeps its
	// runs.
	Reconciliations
}
