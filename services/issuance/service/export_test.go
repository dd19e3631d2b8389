package service_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"slices"
	"testing"
	"time"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/csr"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
)

// keyExported waits until the stream holds want certflow.certificate.
// key_exported events of cert and returns them.
func (e *env) keyExported(t *testing.T, cert string, want int) []*eventsv1.CertificateKeyExported {
	t.Helper()
	ctx := context.Background()
	stream, err := e.conn.JS.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []*eventsv1.CertificateKeyExported
		for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if err != nil || m.Subject != events.CertificateKeyExported {
				continue
			}
			ev := &eventsv1.CertificateKeyExported{}
			if err := proto.Unmarshal(m.Data, ev); err != nil {
				t.Fatal(err)
			}
			if ev.Certificate == cert {
				out = append(out, ev)
			}
		}
		if len(out) >= want {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s events for %s; want %d", len(out), events.CertificateKeyExported, cert, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileNames(files []*issuancev1.BundleFile) (names, media []string) {
	for _, f := range files {
		names = append(names, f.FileName)
		media = append(media, f.MediaType)
	}
	return names, media
}

const (
	pem_ = "application/x-pem-file"
	p12  = "application/x-pkcs12"
	jks  = "application/x-java-keystore"
)

// TestExportCertificate: each server type gets its files with their media
// types; the PEM files are the leaf, the chain and the key; the PFX and the
// PKCS#12 keystore open with go-pkcs12 and the password (the customer's or
// the generated one) and hold the key, the leaf and the chain, and refuse
// another password; the JKS loads with keystore-go and refuses another
// password; the zip holds the same files. Every export with the key is
// counted and published as certflow.certificate.key_exported.
func TestExportCertificate(t *testing.T) {
	e := start(t, time.Now())
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	cert := e.issue(t, alice, "applications/exp", nil, "www.export.test")
	ca, err := e.client.GetCaCertificates(alice, &issuancev1.GetCaCertificatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	dl, err := e.client.DownloadCertificate(alice, &issuancev1.DownloadCertificateRequest{Name: cert.Name})
	if err != nil {
		t.Fatal(err)
	}
	leafBlock, _ := pem.Decode([]byte(dl.CertificatePem))
	leaf, err := x509.ParseCertificate(leafBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	chainBlock, _ := pem.Decode([]byte(ca.IntermediatePem))
	inter, err := x509.ParseCertificate(chainBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		st        issuancev1.ServerType
		password  string
		legacy    bool
		wantFiles []string
		wantMedia []string
	}{
		{issuancev1.ServerType_SERVER_TYPE_NGINX, "", false, []string{"fullchain.pem", "privkey.pem"}, []string{pem_, pem_}},
		{issuancev1.ServerType_SERVER_TYPE_APACHE, "", false, []string{"cert.pem", "chain.pem", "privkey.pem"}, []string{pem_, pem_, pem_}},
		{issuancev1.ServerType_SERVER_TYPE_TOMCAT, "", false, []string{"keystore.jks", "keystore.p12"}, []string{jks, p12}},
		{issuancev1.ServerType_SERVER_TYPE_TOMCAT, "Tomcat-pass-1", false, []string{"keystore.jks", "keystore.p12"}, []string{jks, p12}},
		{issuancev1.ServerType_SERVER_TYPE_IIS, "", false, []string{"certificate.pfx"}, []string{p12}},
		{issuancev1.ServerType_SERVER_TYPE_IIS, "Windows-2016!", true, []string{"certificate.pfx"}, []string{p12}},
		{issuancev1.ServerType_SERVER_TYPE_OTHER, "", false, []string{"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"}, []string{pem_, pem_, pem_, pem_}},
	}
	for i, tt := range tests {
		t.Run(tt.st.String(), func(t *testing.T) {
			resp, err := e.client.ExportCertificate(alice, &issuancev1.ExportCertificateRequest{
				Name: cert.Name, ServerType: tt.st, Password: tt.password, LegacyPkcs12: tt.legacy, Zip: true,
			})
			if err != nil {
				t.Fatalf("ExportCertificate(%v) = %v", tt.st, err)
			}
			names, media := fileNames(resp.Files)
			if !slices.Equal(names, tt.wantFiles) || !slices.Equal(media, tt.wantMedia) {
				t.Fatalf("ExportCertificate(%v) files = %q %q; want %q %q", tt.st, names, media, tt.wantFiles, tt.wantMedia)
			}
			keystoreType := tt.st == issuancev1.ServerType_SERVER_TYPE_TOMCAT || tt.st == issuancev1.ServerType_SERVER_TYPE_IIS
			password := tt.password
			switch {
			case keystoreType && tt.password == "":
				if len(resp.Password) != 20 {
					t.Fatalf("generated password %q; want 20 characters", resp.Password)
				}
				password = resp.Password
			case resp.Password != "":
				t.Fatalf("response password %q; want none (given by the customer, or no keystore)", resp.Password)
			}
			for _, f := range resp.Files {
				checkFile(t, f, password, leaf, inter)
				if f.MediaType != p12 {
					continue
				}
				// Legacy: a SHA-1 MAC (with 3DES); modern: SHA-256 (with
				// AES-256 and PBKDF2).
				want := oidSHA256
				if tt.legacy {
					want = oidSHA1
				}
				if got := pfxMAC(t, f.Content); !got.Equal(want) {
					t.Fatalf("%s MAC algorithm %v; want %v (legacy %v)", f.FileName, got, want, tt.legacy)
				}
			}
			// The archive holds the same files.
			if resp.Archive == nil || resp.Archive.MediaType != "application/zip" {
				t.Fatalf("archive = %v; want a zip", resp.Archive)
			}
			zr, err := zip.NewReader(bytes.NewReader(resp.Archive.Content), int64(len(resp.Archive.Content)))
			if err != nil {
				t.Fatal(err)
			}
			if len(zr.File) != len(resp.Files) {
				t.Fatalf("zip has %d files; want %d", len(zr.File), len(resp.Files))
			}
			for j, zf := range zr.File {
				rc, err := zf.Open()
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(rc)
				_ = rc.Close()
				if zf.Name != resp.Files[j].FileName || !bytes.Equal(b, resp.Files[j].Content) {
					t.Errorf("zip entry %d = %s; want %s with the same content", j, zf.Name, resp.Files[j].FileName)
				}
			}
			evs := e.keyExported(t, cert.Name, i+1)
			ev := evs[i]
			if ev.ServerType != tt.st.String()[len("SERVER_TYPE_"):] || !slices.Equal(ev.Files, tt.wantFiles) || ev.Account != "alice" ||
				ev.Role != "customer" || ev.ExportCount != int64(i+1) || ev.SerialNumber != cert.SerialNumber || ev.PasswordGenerated != (keystoreType && tt.password == "") {
				t.Fatalf("key_exported event = %v", ev)
			}
		})
	}
}

// checkFile decodes one exported file by its media type.
func checkFile(t *testing.T, f *issuancev1.BundleFile, password string, cert, inter *x509.Certificate) {
	t.Helper()
	switch f.MediaType {
	case pem_:
		var blocks []*pem.Block
		for rest := f.Content; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			blocks = append(blocks, b)
		}
		want := map[string][]string{
			"cert.pem": {"CERTIFICATE"}, "chain.pem": {"CERTIFICATE"}, "fullchain.pem": {"CERTIFICATE", "CERTIFICATE"}, "privkey.pem": {"PRIVATE KEY"},
		}[f.FileName]
		var got []string
		for _, b := range blocks {
			got = append(got, b.Type)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s holds %q; want %q", f.FileName, got, want)
		}
		switch f.FileName {
		case "cert.pem", "fullchain.pem":
			leafOK(t, f.FileName, blocks[0].Bytes, cert)
		case "chain.pem":
			if !bytes.Equal(blocks[0].Bytes, inter.Raw) {
				t.Fatalf("chain.pem is not the intermediate")
			}
		case "privkey.pem":
			key, err := x509.ParsePKCS8PrivateKey(blocks[0].Bytes)
			if err != nil {
				t.Fatal(err)
			}
			keyOK(t, f.FileName, key, cert)
		}
		if f.FileName == "fullchain.pem" && !bytes.Equal(blocks[1].Bytes, inter.Raw) {
			t.Fatalf("fullchain.pem's second certificate is not the intermediate")
		}
	case p12:
		key, leaf, cas, err := pkcs12.DecodeChain(f.Content, password)
		if err != nil {
			t.Fatalf("%s does not open with the password: %v", f.FileName, err)
		}
		leafOK(t, f.FileName, leaf.Raw, cert)
		keyOK(t, f.FileName, key, cert)
		if len(cas) != 1 || !cas[0].Equal(inter) {
			t.Fatalf("%s chain = %d certificates; want the intermediate", f.FileName, len(cas))
		}
		if _, _, _, err := pkcs12.DecodeChain(f.Content, password+"x"); err == nil {
			t.Fatalf("%s opened with a wrong password", f.FileName)
		}
	case jks:
		ks := keystore.New()
		if err := ks.Load(bytes.NewReader(f.Content), []byte(password)); err != nil {
			t.Fatalf("%s does not load with the password: %v", f.FileName, err)
		}
		entry, err := ks.GetPrivateKeyEntry("tomcat", []byte(password))
		if err != nil {
			t.Fatal(err)
		}
		key, err := x509.ParsePKCS8PrivateKey(entry.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		keyOK(t, f.FileName, key, cert)
		if len(entry.CertificateChain) != 2 || !bytes.Equal(entry.CertificateChain[1].Content, inter.Raw) {
			t.Fatalf("%s chain has %d certificates; want leaf and intermediate", f.FileName, len(entry.CertificateChain))
		}
		leafOK(t, f.FileName, entry.CertificateChain[0].Content, cert)
		if err := keystore.New().Load(bytes.NewReader(f.Content), []byte(password+"x")); err == nil {
			t.Fatalf("%s loaded with a wrong password", f.FileName)
		}
	default:
		t.Fatalf("%s has media type %q", f.FileName, f.MediaType)
	}
}

var (
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
)

// pfxMAC is the digest algorithm of a PFX's MAC (RFC 7292 PFX.macData).
func pfxMAC(t *testing.T, der []byte) asn1.ObjectIdentifier {
	t.Helper()
	var pfx struct {
		Version  int
		AuthSafe asn1.RawValue
		MacData  struct {
			Mac struct {
				Algorithm pkix.AlgorithmIdentifier
				Digest    []byte
			}
			Salt       []byte
			Iterations int `asn1:"optional,default:1"`
		}
	}
	if _, err := asn1.Unmarshal(der, &pfx); err != nil {
		t.Fatalf("PFX: %v", err)
	}
	return pfx.MacData.Mac.Algorithm.Algorithm
}

func leafOK(t *testing.T, file string, der []byte, leaf *x509.Certificate) {
	t.Helper()
	if !bytes.Equal(der, leaf.Raw) {
		t.Fatalf("%s does not hold the certificate", file)
	}
}

func keyOK(t *testing.T, file string, key any, leaf *x509.Certificate) {
	t.Helper()
	s, ok := key.(crypto.Signer)
	if !ok || !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Fatalf("%s: the key (%T) is not the certificate's", file, key)
	}
}

// TestExportRefusals: another account's certificate is NotFound; a bad
// password or server type InvalidArgument; keystores of a certificate the
// customer holds the key of FailedPrecondition NO_PRIVATE_KEY while its PEM
// types give the certificate files alone (and publish nothing); a revoked
// certificate's key is not exported.
func TestExportRefusals(t *testing.T) {
	e := start(t, time.Now())
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	bob := testenv.As(context.Background(), "bob", auth.Customer)
	held := e.issue(t, alice, "applications/held", nil, "held.export.test")
	own, _ := csr.GenerateKey(csr.ECDSAP256)
	mine := e.issue(t, alice, "applications/mine", own, "mine.export.test")
	revoked := e.issue(t, alice, "applications/gone", nil, "gone.export.test")
	if _, err := e.client.RevokeCertificate(alice, &issuancev1.RevokeCertificateRequest{Name: revoked.Name, Reason: issuancev1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	nginx, tomcat, iis, other := issuancev1.ServerType_SERVER_TYPE_NGINX, issuancev1.ServerType_SERVER_TYPE_TOMCAT, issuancev1.ServerType_SERVER_TYPE_IIS, issuancev1.ServerType_SERVER_TYPE_OTHER

	refusals := []struct {
		name     string
		ctx      context.Context
		cert     string
		st       issuancev1.ServerType
		password string
		code     codes.Code
		reason   string
	}{
		{"another account", bob, held.Name, nginx, "", codes.NotFound, ""},
		{"another account's keystore", bob, held.Name, iis, "", codes.NotFound, ""},
		{"made-up name", alice, "certificates/nope", nginx, "", codes.NotFound, ""},
		{"no server type", alice, held.Name, issuancev1.ServerType_SERVER_TYPE_UNSPECIFIED, "", codes.InvalidArgument, "INVALID_SERVER_TYPE"},
		{"short password", alice, held.Name, iis, "short", codes.InvalidArgument, "INVALID_PASSWORD"},
		{"long password", alice, held.Name, tomcat, string(bytes.Repeat([]byte("a"), 129)), codes.InvalidArgument, "INVALID_PASSWORD"},
		{"password with a space", alice, held.Name, iis, "has a space", codes.InvalidArgument, "INVALID_PASSWORD"},
		{"password not ASCII", alice, held.Name, iis, "pässwörter", codes.InvalidArgument, "INVALID_PASSWORD"},
		{"password with a control character", alice, held.Name, tomcat, "tab\there1", codes.InvalidArgument, "INVALID_PASSWORD"},
		{"CSR customer's PFX", alice, mine.Name, iis, "", codes.FailedPrecondition, "NO_PRIVATE_KEY"},
		{"CSR customer's JKS", alice, mine.Name, tomcat, "Good-pass-1", codes.FailedPrecondition, "NO_PRIVATE_KEY"},
		{"revoked key as PEM", alice, revoked.Name, nginx, "", codes.FailedPrecondition, "CERTIFICATE_REVOKED"},
		{"revoked key as PFX", alice, revoked.Name, iis, "", codes.FailedPrecondition, "CERTIFICATE_REVOKED"},
		{"reviewer", testenv.As(context.Background(), "staff", auth.Reviewer), held.Name, nginx, "", codes.PermissionDenied, "ROLE_REQUIRED"},
	}
	// Downloading a revoked certificate gives its files, not its key.
	if b, err := e.client.DownloadCertificate(alice, &issuancev1.DownloadCertificateRequest{Name: revoked.Name}); err != nil || b.CertificatePem == "" || b.PrivateKeyPem != "" {
		t.Errorf("DownloadCertificate(revoked) = key %v, %v; want the certificate without its key", b.GetPrivateKeyPem() != "", err)
	}
	for _, tt := range refusals {
		resp, err := e.client.ExportCertificate(tt.ctx, &issuancev1.ExportCertificateRequest{Name: tt.cert, ServerType: tt.st, Password: tt.password})
		if got, _ := reason(err); testenv.Code(err) != tt.code || (tt.reason != "" && got != tt.reason) {
			t.Errorf("%s: ExportCertificate = %v, %v; want %v %s", tt.name, resp.GetFiles(), err, tt.code, tt.reason)
		}
	}

	// The customer holds the key: PEM types give the certificate files.
	for _, tt := range []struct {
		st   issuancev1.ServerType
		want []string
	}{
		{nginx, []string{"fullchain.pem"}},
		{issuancev1.ServerType_SERVER_TYPE_APACHE, []string{"cert.pem", "chain.pem"}},
		{other, []string{"cert.pem", "chain.pem", "fullchain.pem"}},
	} {
		resp, err := e.client.ExportCertificate(alice, &issuancev1.ExportCertificateRequest{Name: mine.Name, ServerType: tt.st, Zip: true})
		if err != nil {
			t.Fatalf("ExportCertificate(%s, %v) = %v", mine.Name, tt.st, err)
		}
		if names, _ := fileNames(resp.Files); !slices.Equal(names, tt.want) || resp.Password != "" {
			t.Errorf("ExportCertificate(%s, %v) = %q (password %q); want %q", mine.Name, tt.st, names, resp.Password, tt.want)
		}
	}
	// A revoked certificate of a customer-held key still has its
	// certificate files: nothing secret leaves.
	if _, err := e.client.RevokeCertificate(alice, &issuancev1.RevokeCertificateRequest{Name: mine.Name, Reason: issuancev1.RevocationReason_REVOCATION_REASON_SUPERSEDED}); err != nil {
		t.Fatal(err)
	}
	if resp, err := e.client.ExportCertificate(alice, &issuancev1.ExportCertificateRequest{Name: mine.Name, ServerType: other}); err != nil || len(resp.Files) != 3 {
		t.Fatalf("ExportCertificate(revoked, own key, OTHER) = %v, %v; want the three certificate files", resp.GetFiles(), err)
	}

	// One export of held's key happened (below); none of the refused or
	// key-less ones is on the stream.
	if _, err := e.client.ExportCertificate(alice, &issuancev1.ExportCertificateRequest{Name: held.Name, ServerType: nginx}); err != nil {
		t.Fatal(err)
	}
	if evs := e.keyExported(t, held.Name, 1); len(evs) != 1 {
		t.Fatalf("%d key_exported events of %s; want 1", len(evs), held.Name)
	}
	for _, c := range []string{mine.Name, revoked.Name} {
		if evs := e.keyExported(t, c, 0); len(evs) != 0 {
			t.Fatalf("key_exported events of %s = %v; want none", c, evs)
		}
	}
}
