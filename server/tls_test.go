package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// handshake runs a TLS handshake between srv and a client trusting roots,
// asking for name, and returns the client's error.
func handshake(t *testing.T, srv *tls.Config, roots *x509.CertPool, name string, maxVersion uint16) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		tc.Handshake()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: name, MaxVersion: maxVersion})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	return tc.Handshake()
}

func tlsConfig(t *testing.T, body string) (Config, string) {
	t.Helper()
	data := t.TempDir()
	c, err := LoadConfig(writeConfig(t, body), data)
	if err != nil {
		t.Fatal(err)
	}
	return c, data
}

func rootsOf(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in", path)
	}
	return pool
}

// TestSelfSigned: with no certificate configured, one is made for the
// hostname and loopback, kept under <data_dir>/tls with a private key
// only the owner reads, and used again on the next start.
func TestSelfSigned(t *testing.T) {
	c, data := tlsConfig(t, "[smtp]\nhostname = \"mail.example.test\"\n")
	srv, err := c.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(data, "tls", "cert.pem"), filepath.Join(data, "tls", "key.pem")
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", fi.Mode().Perm())
	}
	// Nothing of Basalt's state is for other local users: files 0600,
	// directories 0700.
	for p, want := range map[string]os.FileMode{certPath: 0o600, filepath.Join(data, "tls"): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: mode %v (%v), want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	roots := rootsOf(t, certPath)
	for _, name := range []string{"mail.example.test", "localhost", "127.0.0.1", "::1"} {
		if err := handshake(t, srv, roots, name, 0); err != nil {
			t.Errorf("handshake for %s: %v", name, err)
		}
	}
	if err := handshake(t, srv, roots, "other.example.test", 0); err == nil {
		t.Error("the certificate is good for a name it was not made for")
	}
	if err := handshake(t, srv, roots, "localhost", tls.VersionTLS11); err == nil {
		t.Error("TLS 1.1 was accepted")
	}

	before, _ := os.ReadFile(certPath)
	again, err := c.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(certPath)
	if !bytes.Equal(before, after) || !bytes.Equal(srv.Certificates[0].Certificate[0], again.Certificates[0].Certificate[0]) {
		t.Fatal("the certificate was made again on the second start")
	}

	// A new hostname, or a certificate near its end, gets a new one.
	c.SMTP.Hostname = "renamed.example.test"
	renamed, err := c.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, renamed, rootsOf(t, certPath), "renamed.example.test", 0); err != nil {
		t.Fatalf("after a rename: %v", err)
	}
	cur, _ := os.ReadFile(certPath)
	if _, made, err := selfSigned(filepath.Join(data, "tls"), c.SMTP.Hostname, time.Now().Add(selfValidity-selfRenew/2)); err != nil || !made {
		t.Fatalf("near expiry: made %v, %v", made, err)
	}
	if now, _ := os.ReadFile(certPath); bytes.Equal(cur, now) {
		t.Fatal("the certificate file was not replaced")
	}
}

// TestConfiguredCertificate: cert_file and key_file are used as they are.
func TestConfiguredCertificate(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := selfSigned(dir, "given.example.test", time.Now()); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c, data := tlsConfig(t, "[tls]\ncert_file = \""+cert+"\"\nkey_file = \""+key+"\"\n")
	srv, err := c.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, srv, rootsOf(t, cert), "given.example.test", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "tls")); !os.IsNotExist(err) {
		t.Fatalf("a self-signed certificate was made as well: %v", err)
	}
	c.TLS.KeyFile = filepath.Join(dir, "missing.pem")
	if _, err := c.ServerTLS(nil); err == nil || !strings.Contains(err.Error(), "tls: load certificate") {
		t.Fatalf("missing key: %v", err)
	}
}
