// Command loadgen sends one prebuilt HTTP/1.1 request at Poisson times (open loop) over
// keep-alive connections to a server on loopback, and prints, as JSON, when each request was
// scheduled, sent and answered (nanoseconds from the start). The latency-model validation
// (benchmarks/validate_latency_model.py --generator go) uses it where the Python generator
// cannot keep up: thousands of requests per second on one core.
//
// Open loop: request i is sent at its scheduled time by whichever of -conns connections is free,
// never waiting for earlier answers unless every connection is in flight (then it is late, and
// the lateness is in the output). Bounded: -n requests, and nothing is sent after -limit.
//
//	go run ./benchmarks/loadgen -addr 127.0.0.1:8000 -request req.bin -rate 2000 -n 20000
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type result struct {
	Scheduled []int64 `json:"scheduled"`
	Sent      []int64 `json:"sent"`
	Done      []int64 `json:"done"`
	OK        []bool  `json:"ok"`
	Errors    int     `json:"errors"`
	FirstErr  string  `json:"firstError,omitempty"`
	CPUSecs   float64 `json:"cpuSeconds"`
	Seconds   float64 `json:"seconds"`
	TimedOut  bool    `json:"timedOut"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "server host:port (loopback)")
	requestFile := flag.String("request", "", "file with the whole HTTP/1.1 request (headers and body)")
	rate := flag.Float64("rate", 100, "mean arrival rate, requests/s")
	n := flag.Int("n", 1000, "requests to send")
	seed := flag.Int64("seed", 1, "seed of the exponential gaps")
	conns := flag.Int("conns", 64, "connections (each sends one request at a time)")
	limit := flag.Duration("limit", 60*time.Second, "send nothing after this long")
	flag.Parse()
	if *rate <= 0 || *n <= 0 || *conns <= 0 {
		fail("-rate, -n and -conns must be > 0")
	}
	message, err := os.ReadFile(*requestFile)
	if err != nil {
		fail(err.Error())
	}
	rng := rand.New(rand.NewSource(*seed))
	at := make([]int64, *n)
	t := 0.0
	for i := range at {
		t += rng.ExpFloat64() / *rate
		at[i] = int64(t * 1e9)
	}
	res := result{Scheduled: make([]int64, *n), Sent: make([]int64, *n), Done: make([]int64, *n),
		OK: make([]bool, *n)}
	var next atomic.Int64
	var errMu sync.Mutex
	start := time.Now().Add(200 * time.Millisecond) // every connection opens first
	stopAt := limit.Nanoseconds()
	var usage0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage0)
	var wg sync.WaitGroup
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn net.Conn
			var reader *bufio.Reader
			dial := func() error {
				var err error
				conn, err = net.DialTimeout("tcp", *addr, 10*time.Second)
				if err == nil {
					reader = bufio.NewReaderSize(conn, 64<<10)
				}
				return err
			}
			if dial() != nil {
				conn = nil
			}
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n || at[i] > stopAt {
					return
				}
				sendAt(start.Add(time.Duration(at[i])))
				res.Scheduled[i] = at[i]
				res.Sent[i] = time.Since(start).Nanoseconds()
				err := roundtrip(&conn, &reader, dial, message)
				res.Done[i] = time.Since(start).Nanoseconds()
				if err != nil {
					errMu.Lock()
					res.Errors++
					if res.FirstErr == "" {
						res.FirstErr = err.Error()
					}
					errMu.Unlock()
					if conn != nil {
						conn.Close()
						conn = nil
					}
					continue
				}
				res.OK[i] = true
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(*limit + 30*time.Second):
		res.TimedOut = true
	}
	var usage1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage1)
	cpu := func(u syscall.Rusage) float64 {
		return float64(u.Utime.Nano()+u.Stime.Nano()) / 1e9
	}
	res.CPUSecs = cpu(usage1) - cpu(usage0)
	res.Seconds = time.Since(start).Seconds()
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fail(err.Error())
	}
}

// sendAt returns at t, within tens of microseconds. Go's timers wake up to about a millisecond
// late (1.0 ms p95 lateness measured here, which bunches Poisson arrivals onto millisecond
// ticks), and spinning the rest of the way takes CPU from the server on the sibling CPU (its
// compute slowed x3.3 here). So it sleeps with the runtime until 2 ms before, then in the
// kernel's nanosleep (this goroutine's thread blocks there; the others run on).
func sendAt(t time.Time) {
	if wait := time.Until(t) - 2*time.Millisecond; wait > 0 {
		time.Sleep(wait)
	}
	for {
		wait := time.Until(t)
		if wait <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(wait.Nanoseconds())
		_ = syscall.Nanosleep(&ts, nil) // EINTR: loop and sleep what is left
	}
}

// roundtrip writes the request and reads one whole response; a non-200 status is an error.
func roundtrip(conn *net.Conn, reader **bufio.Reader, dial func() error, message []byte) error {
	if *conn == nil {
		if err := dial(); err != nil {
			return err
		}
	}
	if _, err := (*conn).Write(message); err != nil {
		return err
	}
	resp, err := http.ReadResponse(*reader, nil)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body[:min(len(body), 200)]))
	}
	return nil
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "loadgen:", message)
	os.Exit(2)
}
