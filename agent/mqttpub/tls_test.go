package mqttpub_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub"
	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// testCA writes a CA and a server certificate for 127.0.0.1 into dir.
func testCA(t *testing.T, dir string) (ca *x509.CertPool, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fleetwatch test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	ca = x509.NewCertPool()
	ca.AddCert(caCert)
	return ca, certFile, keyFile
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPublisher_TLS(t *testing.T) {
	ca, certFile, keyFile := testCA(t, t.TempDir())
	broker := mosquittotest.Start(t, mosquittotest.WithTLS(certFile, keyFile))
	topics, _ := telemetry.NewTopics("")
	open := func(t *testing.T, tlsCfg *tls.Config, logs *logBuffer) *mqttpub.Publisher {
		t.Helper()
		p, err := mqttpub.Open(mqttpub.Config{
			Broker: broker.URL(), TLS: tlsCfg, Topics: topics, Device: "pi-tls",
			Online:       telemetry.Status{V: 1, State: "online", Boot: "b1"},
			MinReconnect: 100 * time.Millisecond, MaxReconnect: 200 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(logs, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close(context.Background()) })
		return p
	}
	waitConnected := func(t *testing.T, p *mqttpub.Publisher, want bool, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for p.Connected() != want {
			if time.Now().After(deadline) {
				t.Fatalf("Connected()=%v after %s, want %v", !want, d, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("TrustedCA", func(t *testing.T) {
		p := open(t, &tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12}, &logBuffer{})
		waitConnected(t, p, true, 10*time.Second)
	})

	t.Run("ErrUntrustedCertificate", func(t *testing.T) {
		logs := &logBuffer{}
		p := open(t, &tls.Config{MinVersion: tls.VersionTLS12}, logs) // system roots: our CA is unknown
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), "certificate signed by unknown authority") {
			if time.Now().After(deadline) {
				t.Fatalf("no clear certificate error logged within 10s; logs:\n%s", logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), "mqtt connect failed") {
			t.Fatalf("logs lack the failure line:\n%s", logs)
		}
		if p.Connected() {
			t.Fatal("connected with an untrusted certificate")
		}
	})

	t.Run("InsecureSkipVerifyConnects", func(t *testing.T) {
		p := open(t, &tls.Config{InsecureSkipVerify: true}, &logBuffer{}) //nolint:gosec // what this case tests
		waitConnected(t, p, true, 10*time.Second)
	})
}

func TestBackoff(t *testing.T) {
	min, max := 500*time.Millisecond, 30*time.Second
	for _, tc := range []struct {
		n        int
		rnd      float64
		want     time.Duration
		describe string
	}{
		{0, 0.5, 500 * time.Millisecond, "right after a loss: min"},
		{1, 0.5, 500 * time.Millisecond, "first failure"},
		{2, 0.5, time.Second, "doubles"},
		{4, 0.5, 4 * time.Second, "doubles again"},
		{4, 0, 3 * time.Second, "jitter low end: -25%"},
		{4, 1, 5 * time.Second, "jitter high end: +25%"},
		{20, 0.5, 30 * time.Second, "capped"},
		{20, 1, 30 * time.Second, "jitter never exceeds the cap"},
	} {
		t.Run(tc.describe, func(t *testing.T) {
			got := mqttpub.Backoff(tc.n, min, max, func() float64 { return tc.rnd })
			if got != tc.want {
				t.Fatalf("Backoff(%d)=%s, want %s", tc.n, got, tc.want)
			}
		})
	}
}
