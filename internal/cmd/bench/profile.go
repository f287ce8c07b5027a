package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiler takes CPU profiles of the sidecar's host process through its
// admin listener's /debug/pprof/ (admin.pprof), into dir; a nil profiler
// takes none.
type profiler struct {
	dir string
}

// start begins a CPU profile of sc lasting d, saved as name.pprof; the
// returned function waits for it to be saved. The profile is taken in a
// goroutine that the returned function waits for.
func (p *profiler) start(ctx context.Context, sc *sidecarProc, name string, d time.Duration) func() {
	if p == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.fetch(ctx, sc, name, d); err != nil {
			log.Printf("  profile %s: %v", name, err)
		}
	}()
	return func() { <-done }
}

func (p *profiler) fetch(ctx context.Context, sc *sidecarProc, name string, d time.Duration) error {
	u := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", sc.admin, max(int(d.Seconds()), 1))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s (is admin.pprof on?)", u, resp.Status)
	}
	path := filepath.Join(p.dir, name+".pprof")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	log.Printf("  profile of the host saved to %s", path)
	return f.Close()
}

// env is what the sidecar needs for profiles to be taken.
func (p *profiler) env() []string {
	if p == nil {
		return nil
	}
	return []string{"PAYSIDECAR_ADMIN__PPROF=true"}
}
