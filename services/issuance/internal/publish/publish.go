// Package publish serves what relying parties fetch over plain HTTP from
// the URLs in certflow's certificates: the CA certificates (AIA caIssuers,
// RFC 5280 4.2.2.1) and, mounted by the revocation code, the CRLs
// (RFC 5280 4.2.1.13). Plain HTTP is what the Baseline Requirements ask
// for (BR 7.1.2.7.7, 7.1.2.11.2): what is served is signed, and a TLS fetch
// could need the very chain it is fetching.
package publish

import (
	"net/http"
	"strconv"
)

// The paths, matching services/issuance/internal/ca's URLs.
const (
	RootCertPath         = "/ca/root.der"
	IntermediateCertPath = "/ca/intermediate.der"
	RootCRLPath          = "/crl/root.crl"
	IntermediateCRLPath  = "/crl/intermediate.crl"
)

// Content types (RFC 2585).
const (
	CertContentType = "application/pkix-cert"
	CRLContentType  = "application/pkix-crl"
)

// Server is the HTTP handler of the published objects.
type Server struct{ mux *http.ServeMux }

// New serves the DER root and intermediate.
func New(rootDER, intermediateDER []byte) *Server {
	s := &Server{mux: http.NewServeMux()}
	s.mux.Handle("GET "+RootCertPath, DER(CertContentType, rootDER))
	s.mux.Handle("GET "+IntermediateCertPath, DER(CertContentType, intermediateDER))
	return s
}

// Handle mounts h at pattern (for example "GET /crl/intermediate.crl").
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// DER serves fixed bytes with a content type.
func DER(contentType string, der []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(der)))
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if r.Method != http.MethodHead {
			w.Write(der)
		}
	})
}
