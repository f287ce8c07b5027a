package nkp

import (
	"crypto/rand"
	"encoding/base32"
	"time"
)

// Beijing is the upstream's time zone (UTC+8, no daylight saving). Every
// req_date, time_expire and end_time is Beijing time, so the day a
// req_seq_id must be unique in ends at midnight in Beijing, not in UTC.
var Beijing = time.FixedZone("CST", 8*60*60)

// ReqDate returns the req_date (yyyyMMdd, Beijing time) for t.
func ReqDate(t time.Time) string { return t.In(Beijing).Format(DateLayout) }

// Timestamp returns t as yyyyMMddHHmmss in Beijing time, the form of
// time_expire and end_time.
func Timestamp(t time.Time) string { return t.In(Beijing).Format(TimestampLayout) }

// ParseTimestamp reads a yyyyMMddHHmmss Beijing time.
func ParseTimestamp(s string) (time.Time, error) {
	return time.ParseInLocation(TimestampLayout, s, Beijing)
}

var seqEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// NewReqSeqID returns a fresh req_seq_id: the Beijing time to the second
// followed by 16 random base32 characters (80 bits), 30 characters in all.
// It sorts by time and is unique per merchant per day with overwhelming
// probability, across replicas, without coordination.
func NewReqSeqID(t time.Time) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms.
		panic("paysidecar: crypto/rand failed: " + err.Error())
	}
	return t.In(Beijing).Format("20060102150405") + seqEncoding.EncodeToString(b[:])
}
