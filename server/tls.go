package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSConfig names the certificate of the mail listeners (STARTTLS and
// implicit TLS). With neither file set, a self-signed certificate is made
// once and kept under <data_dir>/tls, so that TLS works on a fresh install
// (clients must be told to accept it).
type TLSConfig struct {
	CertFile string `toml:"cert_file"` // PEM, the chain after the leaf
	KeyFile  string `toml:"key_file"`  // PEM
}

func (c TLSConfig) validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("tls: cert_file and key_file go together")
	}
	return nil
}

// Self-signed certificates live this long: under the 825 days Apple's
// clients accept, and are made anew at start when fewer than selfRenew
// remain.
const (
	selfValidity = 800 * 24 * time.Hour
	selfRenew    = 30 * 24 * time.Hour
)

// ServerTLS returns the TLS configuration of the mail listeners: the
// configured certificate, or the self-signed one for the SMTP hostname.
// TLS 1.2 is the oldest version taken (RFC 8996 retired 1.0 and 1.1).
func (c Config) ServerTLS(log *slog.Logger) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	if c.TLS.CertFile != "" {
		if cert, err = tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			return nil, fmt.Errorf("tls: load certificate: %w", err)
		}
	} else {
		var made bool
		dir := filepath.Join(c.DataDir, "tls")
		if cert, made, err = selfSigned(dir, c.SMTP.Hostname, time.Now()); err != nil {
			return nil, err
		}
		if made && log != nil {
			log.Info("made a self-signed TLS certificate", "host", c.SMTP.Hostname, "dir", dir)
		}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// selfSigned returns the certificate kept in dir when it is still good for
// host, localhost and the loopback addresses at now, and otherwise makes
// and keeps a new one, reporting that it did.
func selfSigned(dir, host string, now time.Time) (tls.Certificate, bool, error) {
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	names := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ip := net.ParseIP(host); ip != nil {
		ips = append(ips, ip)
	} else if host != "" && host != "localhost" {
		names = append([]string{host}, names...)
	}
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && covers(cert.Leaf, names, ips, now) {
		return cert, false, nil
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"Basalt self-signed"}},
		DNSNames:     names,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour), // clocks differ
		NotAfter:     now.Add(selfValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// Self-signed: its own issuer, so clients may pin it as a root.
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: marshal key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: %w", err)
	}
	// The key first: a crash between the two leaves a pair that does not
	// match, which the next start replaces, never a certificate whose key
	// is lost.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	// The certificate is public, but nothing of Basalt's state is for other
	// local users to read: files 0600, directories 0700.
	if err := writeFileAtomic(certPath, certPEM, 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: %w", err)
	}
	return cert, true, nil
}

// covers reports whether leaf is valid for every name and address until
// well after now.
func covers(leaf *x509.Certificate, names []string, ips []net.IP, now time.Time) bool {
	if leaf == nil || now.Before(leaf.NotBefore) || now.Add(selfRenew).After(leaf.NotAfter) {
		return false
	}
	for _, n := range names {
		if leaf.VerifyHostname(n) != nil {
			return false
		}
	}
	for _, ip := range ips {
		if leaf.VerifyHostname(ip.String()) != nil {
			return false
		}
	}
	return true
}

// writeFileAtomic writes data to path through a synced temporary file in
// the same directory, so that path holds the old content or the new.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	return nil
}
