package reconcile

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"testing"
)

// TestSorter sorts more records than one chunk holds, with repeated keys,
// and checks the order, the stability and that the run files go away.
func TestSorter(t *testing.T) {
	for _, n := range []int{0, 1, 7, 1000} {
		dir := t.TempDir()
		s := newSorter(dir, 16)
		rng := rand.New(rand.NewPCG(1, uint64(n)))
		var want [][]string
		for i := range n {
			rec := []string{fmt.Sprintf("k%03d", rng.IntN(200)), fmt.Sprint(i), "x\x00y"}
			want = append(want, rec)
			if err := s.Add(rec); err != nil {
				t.Fatal(err)
			}
		}
		sort.SliceStable(want, func(i, j int) bool { return want[i][0] < want[j][0] })
		st, err := s.Sorted()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			rec, err := st.Next()
			if err != nil {
				t.Fatal(err)
			}
			if rec == nil {
				if i != n {
					t.Fatalf("n=%d: %d records back", n, i)
				}
				break
			}
			if fmt.Sprint(rec) != fmt.Sprint(want[i]) {
				t.Fatalf("n=%d: record %d = %q, want %q", n, i, rec, want[i])
			}
		}
		st.Close()
		s.Close()
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("n=%d: %d run files left", n, len(left))
		}
	}
}
