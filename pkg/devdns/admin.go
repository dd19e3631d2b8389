package devdns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Record is one entry of GET /records: Values for TXT, A and CNAME,
// Records for CAA.
type Record struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Values  []string `json:"values,omitempty"`
	Records []CAA    `json:"records,omitempty"`
}

// maxAdminBody bounds PUT bodies; records are small.
const maxAdminBody = 1 << 20

// expected tells an API user what body each record type takes.
var expected = map[string]string{
	"TXT":   `{"values":["text", ...]}`,
	"A":     `{"values":["127.0.0.1", ...]}`,
	"CNAME": `{"values":["target.example."]}`,
	"CAA":   `{"records":[{"flag":0,"tag":"issue","value":"certflow.test"}]}`,
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /records", s.handleList)
	mux.HandleFunc("PUT /records/{name}/{type}", s.handlePut)
	mux.HandleFunc("DELETE /records/{name}", s.handleDelete)
	return mux
}

// Records returns every record, sorted by name and type.
func (s *Server) Records() []Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Record{}
	for name, n := range s.nodes {
		if len(n.txt) > 0 {
			out = append(out, Record{Name: name, Type: "TXT", Values: append([]string(nil), n.txt...)})
		}
		if len(n.addrs) > 0 {
			r := Record{Name: name, Type: "A"}
			for _, ip := range n.addrs {
				r.Values = append(r.Values, ip.String())
			}
			out = append(out, r)
		}
		if n.cname != "" {
			out = append(out, Record{Name: name, Type: "CNAME", Values: []string{n.cname}})
		}
		if len(n.caa) > 0 {
			out = append(out, Record{Name: name, Type: "CAA", Records: append([]CAA(nil), n.caa...)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Type < out[j].Type
	})
	return out
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Records())
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	name, err := adminName(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.Delete(name)
	s.log.Info("devdns record deleted", "name", name)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) {
	name, err := adminName(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	typ := strings.ToUpper(r.PathValue("type"))
	want, ok := expected[typ]
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unsupported record type %q; want TXT, A, CNAME or CAA", r.PathValue("type")))
		return
	}
	var body struct {
		Values  []string `json:"values"`
		Records []CAA    `json:"records"`
	}
	if err := decodeStrict(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad %s body: %v; expected %s", typ, err, want))
		return
	}
	bad := func(msg string) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad %s body: %s; expected %s", typ, msg, want))
	}
	if typ == "CAA" {
		if body.Values != nil {
			bad(`CAA takes "records", not "values"`)
			return
		}
	} else if body.Records != nil {
		bad(`only CAA takes "records"`)
		return
	}

	switch typ {
	case "TXT":
		s.SetTXT(name, body.Values...)
	case "A":
		addrs, err := parseAddrs(body.Values)
		if err != nil {
			bad(err.Error())
			return
		}
		s.setAddrs(name, addrs)
	case "CNAME":
		if len(body.Values) != 1 {
			bad(fmt.Sprintf("got %d values, want exactly one target", len(body.Values)))
			return
		}
		if _, ok := dns.IsDomainName(body.Values[0]); !ok || body.Values[0] == "" {
			bad(fmt.Sprintf("invalid target %q", body.Values[0]))
			return
		}
		s.SetCNAME(name, body.Values[0])
	case "CAA":
		for _, c := range body.Records {
			if c.Tag == "" {
				bad("a record has an empty tag")
				return
			}
		}
		s.SetCAA(name, body.Records...)
	}
	s.log.Info("devdns record set", "name", name, "type", typ)
	w.WriteHeader(http.StatusNoContent)
}

// adminName validates a name from a URL path and returns it canonical.
func adminName(raw string) (string, error) {
	if raw == "" || raw == "." {
		return "", errors.New("missing record name in path; expected /records/{name}/...")
	}
	if _, ok := dns.IsDomainName(raw); !ok {
		return "", fmt.Errorf("invalid domain name %q", raw)
	}
	return canonical(raw), nil
}

// decodeStrict decodes exactly one JSON object with no unknown fields.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty body")
		}
		return err
	}
	if dec.Decode(&struct{}{}) != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
