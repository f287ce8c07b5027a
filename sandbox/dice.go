package sandbox

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
)

// digest hashes the seed with parts; every seeded decision and generated
// token of a Server comes from it, so nothing depends on timing or on a
// shared random source.
func (s *Server) digest(parts ...string) [32]byte {
	h := sha256.New()
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], uint64(s.cfg.Seed))
	h.Write(seed[:])
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// roll returns a number in [0, 1) determined by the seed and parts.
func (s *Server) roll(parts ...string) float64 {
	d := s.digest(parts...)
	return float64(binary.BigEndian.Uint64(d[:8])>>11) / (1 << 53)
}

// hit reports whether a fault with the given rate strikes the event named
// by parts.
func (s *Server) hit(rate float64, parts ...string) bool {
	return rate > 0 && s.roll(parts...) < rate
}

// token returns n hex digits determined by the seed and parts.
func (s *Server) token(n int, parts ...string) string {
	d := s.digest(parts...)
	t := hex.EncodeToString(d[:])
	if n > len(t) {
		n = len(t)
	}
	return t[:n]
}

// digits returns n decimal digits determined by the seed and parts.
func (s *Server) digits(n int, parts ...string) string {
	d := s.digest(parts...)
	out := make([]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		out = append(out, '0'+d[i%len(d)]%10)
		if i%len(d) == len(d)-1 {
			d = sha256.Sum256(d[:])
		}
	}
	return string(out)
}
