package listener

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// lineServer is a Set serving a line protocol on 127.0.0.1: each line
// read is a command, run by cmd between Begin and End; a session answers
// "bye" when End reports a shutdown, and ends on a read error.
type lineServer struct {
	set  *Set
	addr string
	// ended receives each session's end: why it ended and whether its
	// context was done by then.
	ended  chan sessionEnd
	served chan error
}

type sessionEnd struct {
	why     string
	ctxDone bool
}

func startLineServer(t *testing.T, cfg Config, cmd func(c *Conn, line string) string) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	ls := &lineServer{set: NewSet(context.Background(), cfg), addr: ln.Addr().String(),
		ended: make(chan sessionEnd, 16), served: make(chan error, 1)}
	go func() {
		ls.served <- ls.set.Serve(ln, nil, func(c *Conn) {
			r := bufio.NewReader(c)
			io.WriteString(c, "hello\n")
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					ls.ended <- sessionEnd{"read: " + err.Error(), c.Context().Err() != nil}
					return
				}
				c.Begin()
				if r.Buffered() == 0 {
					c.Watch()
				}
				reply := cmd(c, strings.TrimSpace(line))
				io.WriteString(c, reply+"\n")
				if !c.End() {
					io.WriteString(c, "bye\n")
					ls.ended <- sessionEnd{"shutdown", c.Context().Err() != nil}
					return
				}
			}
		})
	}()
	t.Cleanup(func() { ls.set.Close() })
	return ls
}

// dial connects and reads the greeting.
func (ls *lineServer) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", ls.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if l, err := r.ReadString('\n'); l != "hello\n" {
		t.Fatalf("greeting %q, %v", l, err)
	}
	return c, r
}

func (ls *lineServer) end(t *testing.T) sessionEnd {
	t.Helper()
	select {
	case e := <-ls.ended:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
	}
	return sessionEnd{}
}

// TestShutdown: an idle connection is closed at once, a busy one finishes
// its command within the grace time and is told, one still busy when the
// grace ends is aborted (its context ends); Close aborts at once.
func TestShutdown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		busy    bool          // a command is running when the shutdown starts
		finish  time.Duration // how long the command takes once the shutdown started; <0: until its context ends
		grace   time.Duration // Shutdown's; 0: Close instead
		wantErr error
		// what the session ends with, and what the client reads after
		// its command ("-": whatever; an aborted command's answer may
		// get out before its connection is closed, or not)
		wantWhy   string
		wantReply string
	}{
		{"idle closed at once", false, 0, 10 * time.Second, nil, "read: ", ""},
		{"busy finishes", true, 50 * time.Millisecond, 10 * time.Second, nil, "shutdown", "done\nbye\n"},
		{"busy past the grace", true, -1, 100 * time.Millisecond, context.DeadlineExceeded, "shutdown", "-"},
		{"close aborts idle", false, 0, 0, nil, "read: ", ""},
		{"close aborts busy", true, -1, 0, nil, "shutdown", "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan struct{}, 1)
			release := make(chan struct{})
			ls := startLineServer(t, Config{}, func(c *Conn, line string) string {
				started <- struct{}{}
				<-release
				if tc.finish < 0 {
					<-c.Context().Done()
					return "cancelled"
				}
				time.Sleep(tc.finish)
				return "done"
			})
			c, r := ls.dial(t)
			if tc.busy {
				io.WriteString(c, "work\n")
				<-started
			}
			close(release)
			begin := time.Now()
			var err error
			if tc.grace > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), tc.grace)
				defer cancel()
				err = ls.set.Shutdown(ctx)
			} else {
				err = ls.set.Close()
			}
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			e := ls.end(t)
			if !strings.HasPrefix(e.why, tc.wantWhy) {
				t.Errorf("session ended with %q, want %q", e.why, tc.wantWhy)
			}
			if tc.finish < 0 && !e.ctxDone {
				t.Error("an aborted session's context is not done")
			}
			if got, _ := io.ReadAll(r); tc.wantReply != "-" && string(got) != tc.wantReply {
				t.Errorf("client read %q, want %q", got, tc.wantReply)
			}
			if err := <-ls.served; err != nil {
				t.Errorf("Serve: %v", err)
			}
			if n := ls.set.Open(); n != 0 {
				t.Errorf("%d connections open after the shutdown", n)
			}
		})
	}
}

// TestShutdownDrain: with Tasks as the Drain hook, Shutdown waits for a
// task that outlives its connection, and none starts after; a task still
// running when the grace ends makes it fail.
func TestShutdownDrain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		work    time.Duration // how long the task runs
		wantErr error
	}{
		{"drained", 50 * time.Millisecond, nil},
		{"past the grace", time.Hour, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tasks Tasks
			finished := make(chan struct{})
			ls := startLineServer(t, Config{Drain: tasks.Drain, AbortWait: 100 * time.Millisecond},
				func(c *Conn, _ string) string {
					if !tasks.Start() {
						return "refused"
					}
					go func() {
						defer tasks.Done()
						select {
						case <-time.After(tc.work):
							close(finished)
						case <-t.Context().Done():
						}
					}()
					return "started"
				})
			c, r := ls.dial(t)
			io.WriteString(c, "start\n")
			if l, _ := r.ReadString('\n'); l != "started\n" {
				t.Fatalf("read %q", l)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := ls.set.Shutdown(ctx)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				select {
				case <-finished:
				default:
					t.Error("Shutdown returned before the task finished")
				}
			}
			if tasks.Start() {
				t.Error("a task started after the drain")
			}
			if ls.set.Context().Err() == nil {
				t.Error("the Set's context is not done after the shutdown")
			}
		})
	}
}

// TestLimitsAndRefusal: connections over the limits, and any during a
// shutdown, read the refusal line.
func TestLimitsAndRefusal(t *testing.T) {
	ls := startLineServer(t, Config{PerIP: 1, Refusal: func(err error) string { return "no: " + err.Error() }},
		func(*Conn, string) string { return "ok" })
	ls.dial(t)
	read := func() string {
		c, err := net.Dial("tcp", ls.addr)
		if err != nil {
			return "dial: " + err.Error()
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		l, _ := bufio.NewReader(c).ReadString('\n')
		return l
	}
	if got, want := read(), "no: "+ErrTooManyFromIP.Error()+"\r\n"; got != want {
		t.Errorf("over the limit: %q, want %q", got, want)
	}
	if n := ls.set.Open(); n != 1 {
		t.Errorf("Open() = %d, want 1", n)
	}
}

// TestWatch: a client that goes away while its command runs ends the
// connection's context while the command still runs; one that sends its
// next command meanwhile has it read, not lost, and its context goes on.
func TestWatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		client   func(c net.Conn)
		wantDone bool
		// how long the command waits for its context to end: a client
		// gone is seen at once; one still there never.
		wait time.Duration
	}{
		{"gone", func(c net.Conn) { c.Close() }, true, 10 * time.Second},
		{"pipelined", func(c net.Conn) { io.WriteString(c, "next\n") }, false, 300 * time.Millisecond},
		// Half-closed after a pipelined command: the answers are still
		// wanted, so the context lives until the session meets the end.
		{"pipelined then half-closed", func(c net.Conn) {
			io.WriteString(c, "next\n")
			c.(*net.TCPConn).CloseWrite()
		}, false, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := make(chan struct{})
			result := make(chan bool, 1)
			ls := startLineServer(t, Config{}, func(c *Conn, line string) string {
				if line != "slow" {
					return "ok " + line
				}
				<-sent
				select {
				case <-c.Context().Done():
					result <- true
				case <-time.After(tc.wait):
					result <- false
				}
				return "slow done"
			})
			c, r := ls.dial(t)
			io.WriteString(c, "slow\n")
			tc.client(c)
			close(sent)
			if got := <-result; got != tc.wantDone {
				t.Fatalf("context done %v, want %v", got, tc.wantDone)
			}
			if tc.wantDone {
				return
			}
			for _, want := range []string{"slow done\n", "ok next\n"} {
				if l, err := r.ReadString('\n'); l != want {
					t.Fatalf("read %q (%v), want %q", l, err, want)
				}
			}
		})
	}
}
