package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strconv"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// The clients speak each protocol plainly, so that the tests see the
// exact replies a client gets, and never fail the test themselves: under
// a fault a refusal is the expected answer, and the caller judges it.

// imapClient is a minimal IMAP client.
type imapClient struct {
	c net.Conn
	r *bufio.Reader
	n int
}

// imapResp is a command's completion: its status ("OK", "NO", "BAD"),
// the rest of the tagged line, and the untagged responses before it.
type imapResp struct {
	status   string
	text     string
	untagged []imapLine
}

// imapLine is one response line with its literals taken out.
type imapLine struct {
	text string
	lits [][]byte
}

func (r imapResp) String() string { return r.status + " " + r.text }

// code is the response code of the tagged line ("UNAVAILABLE"), if any.
func (r imapResp) code() string {
	if !strings.HasPrefix(r.text, "[") {
		return ""
	}
	end := strings.IndexAny(r.text, " ]")
	if end < 0 {
		return ""
	}
	return r.text[1:end]
}

func dialIMAP(addr string) (*imapClient, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	ic := &imapClient{c: c, r: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	greeting, err := ic.line()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if !strings.HasPrefix(greeting.text, "* OK") {
		c.Close()
		return nil, fmt.Errorf("greeting %q", greeting.text)
	}
	return ic, nil
}

// loginIMAP dials, logs in and selects INBOX.
func loginIMAP(addr, user string) (*imapClient, error) {
	c, err := dialIMAP(addr)
	if err != nil {
		return nil, err
	}
	for _, cmd := range []string{fmt.Sprintf("LOGIN %s %q", user, password), "SELECT INBOX"} {
		r, err := c.cmd(cmd)
		if err == nil && r.status != "OK" {
			// Named by its verb, status and code: "LOGIN NO UNAVAILABLE".
			verb, _, _ := strings.Cut(cmd, " ")
			err = fmt.Errorf("%s %s %s (%s)", verb, r.status, r.code(), r.text)
		}
		if err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

func (c *imapClient) close() { c.c.Close() }

var literalRE = regexp.MustCompile(`~?\{(\d+)\}$`)

// line reads one response line, with its literals.
func (c *imapClient) line() (imapLine, error) {
	var l imapLine
	for {
		s, err := c.r.ReadString('\n')
		if err != nil {
			return l, err
		}
		s = strings.TrimSuffix(s, "\r\n")
		l.text += s
		m := literalRE.FindStringSubmatch(s)
		if m == nil {
			return l, nil
		}
		n, _ := strconv.Atoi(m[1])
		lit := make([]byte, n)
		if _, err := io.ReadFull(c.r, lit); err != nil {
			return l, err
		}
		l.lits = append(l.lits, lit)
	}
}

// cmd sends a command and reads until its completion, within 10 seconds.
func (c *imapClient) cmd(command string) (imapResp, error) {
	c.n++
	tag := fmt.Sprintf("a%d", c.n)
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c.c, "%s %s\r\n", tag, command); err != nil {
		return imapResp{}, err
	}
	return c.complete(tag)
}

func (c *imapClient) complete(tag string) (imapResp, error) {
	var r imapResp
	for {
		l, err := c.line()
		if err != nil {
			return r, err
		}
		if rest, ok := strings.CutPrefix(l.text, tag+" "); ok {
			r.status, r.text, _ = strings.Cut(rest, " ")
			return r, nil
		}
		r.untagged = append(r.untagged, l)
	}
}

// appendMsg APPENDs msg to mailbox with a synchronizing literal.
func (c *imapClient) appendMsg(mailbox string, msg []byte) (imapResp, error) {
	c.n++
	tag := fmt.Sprintf("a%d", c.n)
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c.c, "%s APPEND %s {%d}\r\n", tag, mailbox, len(msg)); err != nil {
		return imapResp{}, err
	}
	l, err := c.line()
	if err != nil {
		return imapResp{}, err
	}
	if !strings.HasPrefix(l.text, "+") {
		// Refused before the literal (the tagged reply).
		r := imapResp{}
		if rest, ok := strings.CutPrefix(l.text, tag+" "); ok {
			r.status, r.text, _ = strings.Cut(rest, " ")
			return r, nil
		}
		return r, fmt.Errorf("APPEND: %q instead of a continuation", l.text)
	}
	if _, err := c.c.Write(append(msg, '\r', '\n')); err != nil {
		return imapResp{}, err
	}
	return c.complete(tag)
}

// fetchAll returns the whole of every message in the selected mailbox
// with a UID from first on, by UID.
func (c *imapClient) fetchAll(first uint32) (map[uint32][]byte, error) {
	r, err := c.cmd(fmt.Sprintf("UID FETCH %d:* (UID BODY.PEEK[])", first))
	if err != nil {
		return nil, err
	}
	if r.status != "OK" {
		return nil, fmt.Errorf("UID FETCH: %s", r)
	}
	out := map[uint32][]byte{}
	uidRE := regexp.MustCompile(`\bUID (\d+)\b`)
	for _, l := range r.untagged {
		if !strings.Contains(l.text, " FETCH ") {
			continue
		}
		m := uidRE.FindStringSubmatch(l.text)
		if m == nil || len(l.lits) != 1 {
			return nil, fmt.Errorf("FETCH response %q with %d literals", l.text, len(l.lits))
		}
		uid, _ := strconv.ParseUint(m[1], 10, 32)
		// "UID n:*" always matches the last message, even below first.
		if uint32(uid) >= first {
			out[uint32(uid)] = l.lits[0]
		}
	}
	return out, nil
}

// smtpResult is the reply to one message: 250 when stored, else the
// refusal's code and enhanced code, or a connection failure (code 0).
type smtpResult struct {
	code     int
	enhanced string
	err      error
}

func (r smtpResult) String() string {
	if r.code == 0 {
		return fmt.Sprintf("connection: %v", r.err)
	}
	return fmt.Sprintf("%d %s", r.code, r.enhanced)
}

// smtpClient sends messages over one connection, dialling again when the
// connection is gone.
type smtpClient struct {
	addr string
	c    *gosmtp.Client
}

func (s *smtpClient) close() {
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
}

// send delivers msg from from to rcpt and returns the server's answer.
func (s *smtpClient) send(from, rcpt string, msg []byte) smtpResult {
	res := func(err error) smtpResult {
		var se *gosmtp.SMTPError
		if errors.As(err, &se) {
			if se.Code == 421 {
				s.close()
			}
			return smtpResult{code: se.Code, enhanced: fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2]), err: err}
		}
		s.close()
		return smtpResult{err: err}
	}
	if s.c == nil {
		nc, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			return res(err)
		}
		// Every exchange is bounded: a stuck server fails the load's
		// checks, it does not hang the test.
		nc.SetDeadline(time.Now().Add(time.Minute))
		c := gosmtp.NewClient(nc)
		c.CommandTimeout = 10 * time.Second
		c.SubmissionTimeout = 20 * time.Second
		if err := c.Hello("load.test"); err != nil {
			c.Close()
			return res(err)
		}
		s.c = c
	}
	if err := s.c.Mail(from, nil); err != nil {
		s.c.Reset()
		return res(err)
	}
	if err := s.c.Rcpt(rcpt, nil); err != nil {
		s.c.Reset()
		return res(err)
	}
	w, err := s.c.Data()
	if err != nil {
		s.c.Reset()
		return res(err)
	}
	if _, err := w.Write(msg); err != nil {
		return res(err)
	}
	if err := w.Close(); err != nil {
		return res(err)
	}
	return smtpResult{code: 250}
}

// rpcClient is a logged-in webmail session.
type rpcClient struct {
	base string
	hc   *http.Client
	csrf string
}

// rpcError is a JSON-RPC error object, or (code 0) a failure to get one.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    struct {
		Type string `json:"type"`
	} `json:"data"`
	err error
}

func (e *rpcError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("%d %s (%s)", e.Code, e.Message, e.Data.Type)
}

func newRPC(httpAddr string) *rpcClient {
	jar, _ := cookiejar.New(nil)
	return &rpcClient{base: "http://" + httpAddr, hc: &http.Client{Jar: jar, Timeout: 15 * time.Second}}
}

// call makes one call; a nil error means a result.
func (r *rpcClient) call(method string, params any, result any) *rpcError {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest("POST", r.base+"/rpc", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if r.csrf != "" {
		req.Header.Set("X-CSRF-Token", r.csrf)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return &rpcError{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return &rpcError{err: err}
	}
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return &rpcError{err: fmt.Errorf("%s: HTTP %d %q", method, resp.StatusCode, b)}
	}
	if out.Error != nil {
		return out.Error
	}
	if result != nil {
		if err := json.Unmarshal(out.Result, result); err != nil {
			return &rpcError{err: fmt.Errorf("%s result: %w", method, err)}
		}
	}
	return nil
}

// login authenticates the session.
func (r *rpcClient) login(user string) *rpcError {
	var a struct {
		Auth string `json:"auth"`
		CSRF string `json:"csrf"`
	}
	if e := r.call("auth", map[string]any{"username": user, "password": password}, &a); e != nil {
		return e
	}
	if a.Auth != "success" {
		return &rpcError{err: fmt.Errorf("auth: %s", a.Auth)}
	}
	r.csrf = a.CSRF
	return nil
}

// inboxID is the id of the user's INBOX folder.
func (r *rpcClient) inboxID() (int64, *rpcError) {
	var fl struct {
		Folders []struct {
			FolderID int64  `json:"folderID"`
			Name     string `json:"name"`
		} `json:"folders"`
	}
	if e := r.call("folders.list", map[string]any{}, &fl); e != nil {
		return 0, e
	}
	for _, f := range fl.Folders {
		if f.Name == "INBOX" {
			return f.FolderID, nil
		}
	}
	return 0, &rpcError{err: errors.New("folders.list: no INBOX")}
}

// send composes and sends a message; it succeeds only when every
// recipient got it.
func (r *rpcClient) send(to []string, subject, text string) *rpcError {
	id, e := r.compose()
	if e != nil {
		return e
	}
	return r.sendCompose(id, to, subject, text)
}

// compose opens a compose.
func (r *rpcClient) compose() (int64, *rpcError) {
	var c struct {
		ComposeID int64 `json:"composeID"`
	}
	e := r.call("messages.compose", map[string]any{}, &c)
	return c.ComposeID, e
}

// sendCompose sends an open compose.
func (r *rpcClient) sendCompose(composeID int64, to []string, subject, text string) *rpcError {
	var s struct {
		Delivered []string `json:"delivered"`
		Failed    []struct {
			Address, Reason string
		} `json:"failed"`
	}
	if e := r.call("messages.send", map[string]any{"composeID": composeID, "to": to, "subject": subject, "body": map[string]any{"text": text}, "delay": 0}, &s); e != nil {
		return e
	}
	if len(s.Failed) > 0 || len(s.Delivered) != len(to) {
		return &rpcError{err: fmt.Errorf("messages.send: delivered %v, failed %v", s.Delivered, s.Failed)}
	}
	return nil
}

// events is an open GET /rpc/events stream.
type events struct {
	resp *http.Response
	// C gets each event's name and data.
	C    chan [2]string
	done chan struct{}
}

func (r *rpcClient) events() (*events, error) {
	hc := &http.Client{Jar: r.hc.Jar}
	resp, err := hc.Get(r.base + "/rpc/events")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("events: HTTP %d %s", resp.StatusCode, b)
	}
	e := &events{resp: resp, C: make(chan [2]string, 100), done: make(chan struct{})}
	go func() {
		defer close(e.C)
		sc := bufio.NewScanner(resp.Body)
		var name string
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "event: "):
				name = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: "):
				select {
				case e.C <- [2]string{name, strings.TrimPrefix(l, "data: ")}:
				case <-e.done:
					return
				}
			}
		}
	}()
	return e, nil
}

func (e *events) close() {
	close(e.done)
	e.resp.Body.Close()
}
