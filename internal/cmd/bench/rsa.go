package main

import (
	"fmt"
	"runtime"
	"syscall"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// rusageThread is RUSAGE_THREAD of getrusage(2): the calling thread only.
const rusageThread = 1

// threadCPU returns the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU returns the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureRSA is the baseline of every CPU figure: the cost in ms of one
// RSA-2048 PKCS#1 v1.5 SHA-256 signature and one verification, the
// unavoidable work of a create. It signs and verifies a create-sized
// canonical string p.rsaPairs times on one locked OS thread and reads that
// thread's CPU time: wall time on a shared machine would count other
// processes. Each repeat of the closed loops measures it again, so that
// each ratio divides by the cost under the same load.
func measureRSA(p plan) (float64, error) {
	keys, err := sandbox.DevKeys()
	if err != nil {
		return 0, err
	}
	msg := []byte(`{"goods_desc":"bench","huifu_id":"6666000100000001","notify_url":"http://127.0.0.1:8001/notify",` +
		`"req_date":"20261201","req_seq_id":"20261201101010abcdef0123456789","trade_type":"A_NATIVE","trans_amt":"0.01"}`)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	began := threadCPU()
	for range p.rsaPairs {
		sig, err := nkp.Sign(keys.Merchant.Private, msg)
		if err != nil {
			return 0, fmt.Errorf("sign: %w", err)
		}
		if err := nkp.Verify(&keys.Merchant.Private.PublicKey, msg, sig); err != nil {
			return 0, fmt.Errorf("verify: %w", err)
		}
	}
	return ms(threadCPU()-began) / float64(p.rsaPairs), nil
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
