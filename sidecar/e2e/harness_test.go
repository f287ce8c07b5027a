package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/build"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
)

// binDir holds the binaries TestMain builds once for the package: the
// sidecar, and in plugins/ every flow plugin under the repository's
// plugins/ directory.
var binDir string

// flowNames are the flows TestMain built, by name.
var flowNames []string

// pluginBuilds lists the flow plugins under the repository's plugins/
// directory, as the Makefile finds them: every directory that holds a main
// package, named after the directory.
func pluginBuilds(root string) ([][2]string, error) {
	dirs, err := os.ReadDir(filepath.Join(root, "plugins"))
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		if pkg, err := build.ImportDir(filepath.Join(root, "plugins", d.Name()), 0); err == nil && pkg.Name == "main" {
			out = append(out, [2]string{"plugins/" + d.Name(), "./plugins/" + d.Name()})
		}
	}
	return out, nil
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "paysidecar-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		plugins, err := pluginBuilds(filepath.Join("..", ".."))
		if err != nil {
			fmt.Fprintln(os.Stderr, "find the flow plugins:", err)
			return 1
		}
		for _, p := range plugins {
			flowNames = append(flowNames, filepath.Base(p[0]))
		}
		builds := append([][2]string{{"paysidecar", "./sidecar/cmd/paysidecar"}, {"demo-app", "./examples/demo-app"}}, plugins...)
		for _, b := range builds {
			args := []string{"build", "-o", filepath.Join(dir, b[0])}
			if raceEnabled {
				// A data race in the sidecar under this load fails the
				// test: the race detector makes the process exit 66.
				args = append(args, "-race")
			}
			cmd := exec.Command("go", append(args, b[1])...)
			cmd.Dir = filepath.Join("..", "..")
			if !raceEnabled && strings.HasPrefix(b[0], "plugins/") {
				// Plugins are built static, as the Makefile builds them
				// (the race detector needs cgo).
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b[1], err, out)
				return 1
			}
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// sidecar is a paysidecar process under test.
type sidecar struct {
	t      testing.TB
	cmd    *exec.Cmd
	API    string // base URL
	Notify string // notify URL
	Admin  string // base URL
	env    []string
	logs   *lockedBuffer
	stdout *lockedBuffer
	exited chan struct{}
	Client *client.Client
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeNotifyPort returns a loopback address with a free port in
// 8000-9005, the only ports the upstream sends notifications to.
func freeNotifyPort(t testing.TB) string {
	t.Helper()
	for range 200 {
		port := 8000 + rand.IntN(1006)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		return addr
	}
	t.Fatal("no free port in 8000-9005")
	return ""
}

// sidecarEnv is the environment of a sidecar talking to the sandbox at
// upstream, storing in dir, with extra settings in extra (KEY=value).
func sidecarEnv(t testing.TB, upstream, dir string, extra ...string) (env []string, api, notify, admin string) {
	api, notifyAddr, admin := freePort(t), freeNotifyPort(t), freePort(t)
	env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"PAYSIDECAR_UPSTREAM__BASE_URL=" + upstream,
		"PAYSIDECAR_UPSTREAM__TIMEOUT=5s",
		"PAYSIDECAR_API__LISTEN=" + api,
		"PAYSIDECAR_NOTIFY__LISTEN=" + notifyAddr,
		"PAYSIDECAR_NOTIFY__PUBLIC_URL=http://" + notifyAddr + "/notify",
		"PAYSIDECAR_ADMIN__LISTEN=" + admin,
		"PAYSIDECAR_STORE__SQLITE_PATH=" + filepath.Join(dir, "paysidecar.db"),
		// Every plugin in the directory runs; against the sandbox each
		// fills in its own settings' sandbox defaults.
		"PAYSIDECAR_PLUGINS__DIR=" + filepath.Join(binDir, "plugins"),
		"PAYSIDECAR_REQUERY__SCHEDULE=300ms,500ms,1s",
		"PAYSIDECAR_REQUERY__INTERVAL=100ms",
		"PAYSIDECAR_LOG__LEVEL=info",
		// No daily reconciliation: its event would reach the tests'
		// webhook sinks (TestReconcileThroughTheSidecar runs it by hand).
		"PAYSIDECAR_RECONCILE__SCHEDULE=",
	}
	return append(env, extra...), "http://" + api, "http://" + notifyAddr + "/notify", "http://" + admin
}

// startSidecar runs the sidecar binary with env and waits until /readyz
// answers 200. The process is killed when the test ends.
func startSidecar(t testing.TB, env []string, api, notify, admin string) *sidecar {
	t.Helper()
	s := &sidecar{t: t, API: api, Notify: notify, Admin: admin, env: env, logs: &lockedBuffer{}, stdout: &lockedBuffer{}}
	s.start()
	t.Cleanup(func() {
		s.stop(syscall.SIGTERM)
		if logs := s.logs.String(); strings.Contains(logs, "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in the sidecar:\n%s", logs[strings.Index(logs, "WARNING: DATA RACE"):])
		}
		// A plugin built with the race detector that found a race exits
		// with status 66; its report is a debug line of the host's log.
		if logs := s.logs.String(); raceEnabled && strings.Contains(logs, `error="exit status 66"`) {
			t.Errorf("the race detector found a data race in a plugin:\n%s", tail(logs, 30))
		}
		if t.Failed() {
			t.Logf("sidecar logs:\n%s", tail(s.logs.String(), 30))
		}
	})
	return s
}

func (s *sidecar) start() {
	s.t.Helper()
	s.cmd = exec.Command(filepath.Join(binDir, "paysidecar"), "run")
	s.cmd.Env = s.env
	s.cmd.Stdout = s.stdout
	s.cmd.Stderr = s.logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.exited)
	s.Client = client.New(s.API, client.WithHTTPClient(&http.Client{Timeout: 20 * time.Second}))
	waitFor(s.t, 60*time.Second, "sidecar ready", func() (bool, string) {
		select {
		case <-s.exited:
			s.t.Fatalf("sidecar exited during start:\n%s", tail(s.logs.String(), 40))
		default:
		}
		resp, err := http.Get(s.Admin + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, string(body)
	})
}

// stop sends sig to the sidecar's process group (its plugins too) and
// waits for it to exit.
func (s *sidecar) stop(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	if sig == syscall.SIGKILL {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	} else {
		_ = s.cmd.Process.Signal(sig)
	}
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	// Plugin processes exit on their own when their host is gone (see
	// TestPluginsDieWithTheHost); the group's kill only makes sure of it.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// restart kills the sidecar with SIGKILL and starts it again on the same
// store and ports.
func (s *sidecar) restart() {
	s.stop(syscall.SIGKILL)
	s.start()
}

// pluginPID returns the pid of the named plugin process of the sidecar.
func (s *sidecar) pluginPID(name string) int {
	s.t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the parenthesized command: state, ppid, ...
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != strconv.Itoa(s.cmd.Process.Pid) {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if filepath.Base(exe) == name {
			return pid
		}
	}
	s.t.Fatalf("no %s plugin process under pid %d", name, s.cmd.Process.Pid)
	return 0
}

// metric returns the sum of the samples of a metric whose labels contain
// every given label pair, from /metrics.
func (s *sidecar) metric(name string, labels ...string) float64 {
	s.t.Helper()
	resp, err := http.Get(s.Admin + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
		}
		time.Sleep(delay)
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// webhookSink is the application's webhook endpoint in tests. It checks
// every delivery's Standard Webhooks signature and keeps what arrived.
type webhookSink struct {
	t      testing.TB
	secret []byte
	srv    *httptest.Server
	mu     sync.Mutex
	events []received
	// fail, when it returns a status, answers with it instead of 204.
	fail func() int
}

type received struct {
	ID    string
	Body  []byte
	Event client.Event
}

const testWebhookSecret = "whsec_cGF5c2lkZWNhci1lMmUtd2ViaG9vay1zZWNyZXQ="

func newWebhookSink(t testing.TB) *webhookSink {
	return newWebhookSinkWithSecret(t, testWebhookSecret)
}

// newWebhookSinkWithSecret is a sink whose deliveries must be signed with
// secret ("whsec_" and base64).
func newWebhookSinkWithSecret(t testing.TB, secret string) *webhookSink {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	w := &webhookSink{t: t, secret: key}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhookSink) serve(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts, sig := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	mac := hmac.New(sha256.New, w.secret)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	valid := false
	for _, s := range strings.Fields(sig) {
		valid = valid || hmac.Equal([]byte(s), []byte(want))
	}
	if !valid {
		w.t.Errorf("webhook %s: signature %q does not verify", id, sig)
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	if w.fail != nil {
		if code := w.fail(); code != 0 {
			rw.WriteHeader(code)
			return
		}
	}
	var ev client.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		w.t.Errorf("webhook %s: body is not an event: %v", id, err)
	}
	if ev.ID != id {
		w.t.Errorf("webhook-id %s differs from the event id %s", id, ev.ID)
	}
	w.mu.Lock()
	w.events = append(w.events, received{ID: id, Body: body, Event: ev})
	w.mu.Unlock()
	rw.WriteHeader(http.StatusNoContent)
}

// received returns a copy of what arrived so far.
func (w *webhookSink) received() []received {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]received(nil), w.events...)
}

// env returns the sidecar settings that deliver to this sink.
func (w *webhookSink) env() []string {
	return []string{
		"PAYSIDECAR_WEBHOOK__URL=" + w.srv.URL + "/hook",
		"PAYSIDECAR_WEBHOOK__SECRET=" + testWebhookSecret,
		"PAYSIDECAR_WEBHOOK__SCHEDULE=100ms,200ms,400ms,800ms",
		"PAYSIDECAR_WEBHOOK__TIMEOUT=2s",
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
