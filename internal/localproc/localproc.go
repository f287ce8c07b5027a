// Package localproc runs the product's binaries as local processes for the
// programs that load them from outside (soak, bench), and reads what Linux
// says about them in /proc: resident memory, CPU time, child processes.
package localproc

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a child process started by Start.
type Proc struct {
	// Cmd is the running command.
	Cmd *exec.Cmd
	// Exited is closed once the process has exited.
	Exited chan struct{}
}

// Start runs path with args in a process group of its own, in the log's
// directory with a minimal environment (PATH, HOME set to that directory)
// plus env, and its output written to logPath.
func Start(path string, args []string, logPath string, env ...string) (*Proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = filepath.Dir(logPath)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Dir(logPath)}, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &Proc{Cmd: cmd, Exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.Exited)
	}()
	return p, nil
}

// PID is the process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Stop ends the process with SIGTERM, then its whole group (plugins
// included) with SIGKILL after 20 s or once it has exited, and waits.
func (p *Proc) Stop() {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited:
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.Exited
}

// FreePort returns a loopback address whose port was free a moment ago.
func FreePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("no free loopback port: %v", err))
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// FreePortIn returns a loopback address whose port, from lo to hi, was
// free a moment ago. It tries ports in random order, so that programs
// choosing at the same time (two test runs on one machine) rarely choose
// the same one before either binds it.
func FreePortIn(lo, hi int) (string, error) {
	for range 4 * (hi - lo + 1) {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(lo+rand.IntN(hi-lo+1)))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free loopback port in %d-%d", lo, hi)
}

// WaitHTTP polls u until it answers 200 or timeout passes.
func WaitHTTP(u string, timeout time.Duration) error {
	return waitHTTP(u, timeout, nil)
}

// WaitHTTP polls u until it answers 200, timeout passes or the process
// exits.
func (p *Proc) WaitHTTP(u string, timeout time.Duration) error {
	return waitHTTP(u, timeout, p.Exited)
}

func waitHTTP(u string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("the process serving %s exited", u)
		default:
		}
		resp, err := http.Get(u)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", u, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Scrape reads the named metrics from the Prometheus text at metricsURL.
// A name may carry labels exactly as exposed, e.g.
// `paysidecar_plugin_up{flow="alipay-native"}`.
func Scrape(metricsURL string, names ...string) (map[string]float64, error) {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		for _, name := range names {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return nil, fmt.Errorf("scrape %s: %w", name, err)
				}
				out[name] = n
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	for _, name := range names {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("scrape: no %s in %s", name, metricsURL)
		}
	}
	return out, nil
}

// RSSMiB returns the resident memory of pid (VmRSS) in MiB, or 0 when it
// cannot be read.
func RSSMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// Stat is what /proc/<pid>/stat says about a process.
type Stat struct {
	// PPID is the parent's process id.
	PPID int
	// CPU is the user plus system time the process has used.
	CPU time.Duration
	// StartedAfterBoot is when the process started, after system boot.
	StartedAfterBoot time.Duration
}

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, fmt.Errorf("stat of %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis, where field 3 (state) is f[0].
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("stat of %d: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("stat of %d: %d fields", pid, len(f))
	}
	num := func(k int) int64 { n, _ := strconv.ParseInt(f[k-3], 10, 64); return n }
	tick := time.Second / clockTicks
	return Stat{
		PPID:             int(num(4)),
		CPU:              time.Duration(num(14)+num(15)) * tick,
		StartedAfterBoot: time.Duration(num(22)) * tick,
	}, nil
}

// CPUTime returns the user plus system CPU time pid has used, or 0 when it
// cannot be read.
func CPUTime(pid int) time.Duration {
	s, _ := ReadStat(pid)
	return s.CPU
}

// ChildNamed returns the pid of parent's child process whose executable is
// named name, or 0.
func ChildNamed(parent int, name string) int {
	return Children(parent)[name]
}

// Children returns parent's child processes by the name of their
// executable.
func Children(parent int) map[string]int {
	out := map[string]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := ReadStat(pid)
		if err != nil || s.PPID != parent {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil {
			out[filepath.Base(exe)] = pid
		}
	}
	return out
}

// LoadAverage returns the three load averages of /proc/loadavg, e.g.
// "3.10 2.95 2.40".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// ContextSwitches returns the voluntary plus involuntary context switches
// of pid's threads that are alive, or 0 when they cannot be read. Each
// wake-up of a thread that waited (on a socket, a futex, the disk) is a
// voluntary switch.
func ContextSwitches(pid int) int64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var n int64
	for _, t := range tasks {
		f, err := os.Open(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
		_ = f.Close()
	}
	return n
}
