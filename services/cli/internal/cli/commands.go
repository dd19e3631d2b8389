package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/certflow/certflow/services/cli/internal/client"
)

// Choices the flags take, mapped to the API's enum names. One table per
// flag, so help text and parsing cannot disagree.
var (
	dcvMethods = map[string]string{
		"dns": "VALIDATION_METHOD_DNS_TXT", "cname": "VALIDATION_METHOD_DNS_CNAME",
		"http": "VALIDATION_METHOD_HTTP_FILE", "email": "VALIDATION_METHOD_EMAIL",
	}
	keyAlgorithms = map[string]string{
		"ecdsa-p256": "KEY_ALGORITHM_ECDSA_P256", "ecdsa-p384": "KEY_ALGORITHM_ECDSA_P384",
		"rsa-2048": "KEY_ALGORITHM_RSA_2048", "rsa-4096": "KEY_ALGORITHM_RSA_4096",
	}
	serverTypes = map[string]string{
		"nginx": "SERVER_TYPE_NGINX", "apache": "SERVER_TYPE_APACHE", "tomcat": "SERVER_TYPE_TOMCAT",
		"iis": "SERVER_TYPE_IIS", "other": "SERVER_TYPE_OTHER",
	}
	revocationReasons = map[string]string{
		"unspecified": "REVOCATION_REASON_UNSPECIFIED", "key-compromise": "REVOCATION_REASON_KEY_COMPROMISE",
		"affiliation-changed": "REVOCATION_REASON_AFFILIATION_CHANGED", "superseded": "REVOCATION_REASON_SUPERSEDED",
		"cessation-of-operation": "REVOCATION_REASON_CESSATION_OF_OPERATION",
	}
)

func choose(flag, v string, table map[string]string) (string, error) {
	if v == "" {
		return "", nil
	}
	if e, ok := table[strings.ToLower(v)]; ok {
		return e, nil
	}
	return "", usagef("--%s %q: want one of %s", flag, v, strings.Join(keys(table), ", "))
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// name checks a resource name argument such as applications/abc.
func name(arg, collection string) (string, error) {
	id, ok := strings.CutPrefix(arg, collection+"/")
	if !ok || id == "" || strings.ContainsAny(id, "/?#%") {
		return "", usagef("%q is not a name of %s: want %s/<id>", arg, collection, collection)
	}
	return arg, nil
}

type application struct {
	Name            string      `json:"name"`
	State           string      `json:"state"`
	ProgressPercent int         `json:"progress_percent"`
	Certificate     string      `json:"certificate"`
	FailureCause    string      `json:"failure_cause"`
	Domains         []string    `json:"domains"`
	Challenges      []challenge `json:"challenges"`
}

type challenge struct {
	Name, Domain, State, Method                   string
	DNSRecordName, DNSRecordType, DNSRecordValue  string
	HTTPURL, HTTPContent, EmailAddress, LastError string
}

func (c *challenge) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s := func(k string) string { v, _ := raw[k].(string); return v }
	*c = challenge{Name: s("name"), Domain: s("domain"), State: s("state"), Method: s("method"),
		DNSRecordName: s("dns_record_name"), DNSRecordType: s("dns_record_type"), DNSRecordValue: s("dns_record_value"),
		HTTPURL: s("http_url"), HTTPContent: s("http_content"), EmailAddress: s("email_address"), LastError: s("last_error")}
	return nil
}

func buyCmd(e *env) *cobra.Command {
	var product, requestID string
	var quantity, domains int
	c := &cobra.Command{
		Use:   "buy --product dv-single-1y [--quantity N]",
		Short: "Buy certificate instances",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if product == "" {
				return usagef("--product is required, for example dv-single-1y (GET /v1/products lists them)")
			}
			if !strings.HasPrefix(product, "products/") {
				product = "products/" + product
			}
			if requestID == "" {
				requestID = client.NewRequestID()
			}
			body := map[string]any{"product": product, "quantity": quantity}
			if domains > 0 {
				body["domain_count"] = domains
			}
			var order struct {
				Name      string   `json:"name"`
				Instances []string `json:"instances"`
			}
			raw, err := e.api.Do(cmd.Context(), "POST", "/v1/orders?request_id="+url.QueryEscape(requestID), body, &order)
			if err != nil {
				return err
			}
			e.print(raw, func(w io.Writer) {
				fmt.Fprintf(w, "bought %s (request id %s):\n", order.Name, requestID)
				for _, in := range order.Instances {
					fmt.Fprintf(w, "  %s\n", in)
				}
			})
			return nil
		},
	}
	c.Flags().StringVar(&product, "product", "", "product, for example dv-single-1y")
	c.Flags().IntVar(&quantity, "quantity", 1, "how many instances")
	c.Flags().IntVar(&domains, "domain-count", 0, "names per instance (multi-domain products)")
	c.Flags().StringVar(&requestID, "request-id", "", "makes a retry safe: the same id buys once (default: new)")
	return c
}

func applyCmd(e *env) *cobra.Command {
	var file, instance, dcv, csrFile, keyAlg, applicantName, applicantEmail, applicantPhone, requestID string
	var domainList []string
	var submit bool
	c := &cobra.Command{
		Use:   "apply (-f application.yaml | --instance instances/ID --domain NAME ...) [--submit]",
		Short: "Create an application (from flags or a YAML file) and optionally submit it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{}
			if file != "" {
				data, err := os.ReadFile(file)
				if err != nil {
					return usageError{err}
				}
				j, err := yaml.YAMLToJSON(data)
				if err != nil {
					return usagef("%s: %v", file, err)
				}
				if err := json.Unmarshal(j, &body); err != nil || body == nil {
					return usagef("%s: want a mapping of the application's fields (instance, domains, applicant, ...)", file)
				}
			}
			if instance != "" {
				body["instance"] = instance
			}
			if len(domainList) > 0 {
				body["domains"] = domainList
			}
			m, err := choose("dcv", dcv, dcvMethods)
			if err != nil {
				return err
			}
			if m != "" {
				body["validation_method"] = m
			}
			k, err := choose("key-algorithm", keyAlg, keyAlgorithms)
			if err != nil {
				return err
			}
			if k != "" {
				body["key_algorithm"] = k
			}
			if csrFile != "" {
				pem, err := os.ReadFile(csrFile)
				if err != nil {
					return usageError{err}
				}
				body["csr_mode"], body["csr"] = "CSR_MODE_MANUAL", string(pem)
			}
			if applicantName != "" || applicantEmail != "" || applicantPhone != "" {
				a, _ := body["applicant"].(map[string]any)
				if a == nil {
					a = map[string]any{}
				}
				for k, v := range map[string]string{"name": applicantName, "email": applicantEmail, "phone": applicantPhone} {
					if v != "" {
						a[k] = v
					}
				}
				body["applicant"] = a
			}
			if body["instance"] == nil || body["domains"] == nil {
				return usagef("an application needs an instance and at least one domain: --instance and --domain, or in the file")
			}
			if requestID == "" {
				requestID = client.NewRequestID()
			}
			var app application
			raw, err := e.api.Do(cmd.Context(), "POST", "/v1/applications?request_id="+url.QueryEscape(requestID), body, &app)
			if err != nil {
				return err
			}
			if submit {
				if raw, err = e.api.Do(cmd.Context(), "POST", "/v1/"+app.Name+":submit", map[string]any{}, &app); err != nil {
					return fmt.Errorf("%s was created but not submitted: %w; submit it with `certflow apply` again or through the API", app.Name, err)
				}
			}
			e.print(raw, func(w io.Writer) {
				fmt.Fprintf(w, "%s is %s (%d%%)\n", app.Name, app.State, app.ProgressPercent)
				if submit {
					writeInstructions(w, app)
					fmt.Fprintf(w, "then: certflow wait %s\n", app.Name)
				} else {
					fmt.Fprintf(w, "submit it with the API (POST /v1/%s:submit) or run apply with --submit\n", app.Name)
				}
			})
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&file, "file", "f", "", "YAML file with the application's fields, as in the API (flags override)")
	f.StringVar(&instance, "instance", "", "the instance to use, instances/<id>")
	f.StringArrayVar(&domainList, "domain", nil, "a name to certify (repeat for more)")
	f.StringVar(&dcv, "dcv", "", "how to prove control: "+strings.Join(keys(dcvMethods), ", ")+" (default dns)")
	f.StringVar(&csrFile, "csr", "", "your own PEM CSR (otherwise the service makes the key)")
	f.StringVar(&keyAlg, "key-algorithm", "", "key the service makes: "+strings.Join(keys(keyAlgorithms), ", "))
	f.StringVar(&applicantName, "applicant-name", "", "applicant's name")
	f.StringVar(&applicantEmail, "applicant-email", "", "applicant's email")
	f.StringVar(&applicantPhone, "applicant-phone", "", "applicant's phone")
	f.StringVar(&requestID, "request-id", "", "makes a retry safe: the same id creates once (default: new)")
	f.BoolVar(&submit, "submit", false, "submit the application right away")
	return c
}

func writeInstructions(w io.Writer, app application) {
	pending := false
	for _, c := range app.Challenges {
		if c.State != "PENDING" {
			fmt.Fprintf(w, "  %s: %s\n", c.Domain, strings.ToLower(c.State))
			continue
		}
		pending = true
		switch {
		case c.DNSRecordName != "":
			fmt.Fprintf(w, "  %s: publish DNS %s %s with value %s\n", c.Domain, c.DNSRecordType, c.DNSRecordName, c.DNSRecordValue)
		case c.HTTPURL != "":
			fmt.Fprintf(w, "  %s: serve %s with the content %s\n", c.Domain, c.HTTPURL, c.HTTPContent)
		case c.EmailAddress != "":
			fmt.Fprintf(w, "  %s: open the mail sent to %s and confirm the code\n", c.Domain, c.EmailAddress)
		default:
			fmt.Fprintf(w, "  %s: pending\n", c.Domain)
		}
		if c.LastError != "" {
			fmt.Fprintf(w, "    last check: %s\n", c.LastError)
		}
	}
	if len(app.Challenges) == 0 {
		fmt.Fprintln(w, "  no domain challenges yet (submit the application first)")
	} else if !pending {
		fmt.Fprintln(w, "  nothing to publish: every name is verified")
	}
}

func instructionsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "instructions applications/ID",
		Short: "Show what to publish to prove control of each name",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := name(args[0], "applications")
			if err != nil {
				return err
			}
			var app application
			raw, err := e.api.Do(cmd.Context(), "GET", "/v1/"+n, nil, &app)
			if err != nil {
				return err
			}
			if e.json {
				var whole map[string]json.RawMessage
				_ = json.Unmarshal(raw, &whole)
				raw = whole["challenges"]
				if raw == nil {
					raw = json.RawMessage("[]")
				}
			}
			e.print(raw, func(w io.Writer) {
				fmt.Fprintf(w, "%s is %s (%d%%):\n", app.Name, app.State, app.ProgressPercent)
				writeInstructions(w, app)
			})
			return nil
		},
	}
}

func getCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show any resource of the account (applications/ID, certificates/ID, orders/ID, ...)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			coll, _, ok := strings.Cut(args[0], "/")
			if !ok {
				return usagef("%q is not a resource name such as applications/abc", args[0])
			}
			n, err := name(args[0], coll)
			if err != nil {
				return err
			}
			var v any
			raw, err := e.api.Do(cmd.Context(), "GET", "/v1/"+n, nil, &v)
			if err != nil {
				return err
			}
			e.json = true // a resource shows as the API gives it
			e.print(raw, nil)
			return nil
		},
	}
}

// terminal reports whether w is a terminal: a progress bar only there.
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func waitCmd(e *env) *cobra.Command {
	var until string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "wait applications/ID [--until ISSUED] [--timeout 10m]",
		Short: "Follow an application's state and progress until it is issued (or fails)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := name(args[0], "applications")
			if err != nil {
				return err
			}
			until = strings.ToUpper(until)
			deadline := time.Now().Add(timeout)
			var bar *progressbar.ProgressBar
			if !e.json && terminal(e.stderr) {
				bar = progressbar.NewOptions(100,
					progressbar.OptionSetWriter(e.stderr),
					progressbar.OptionSetWidth(30),
					progressbar.OptionShowElapsedTimeOnFinish(),
					progressbar.OptionSetPredictTime(false),
					progressbar.OptionSetDescription(n),
					progressbar.OptionFullWidth())
			}
			last, delay := "", 500*time.Millisecond
			for {
				var app application
				raw, err := e.api.Do(cmd.Context(), "GET", "/v1/"+n, nil, &app)
				if err != nil {
					if client.IsStatus(err, 429) || client.IsStatus(err, 503) {
						app.State = last // busy: keep waiting
					} else {
						return err
					}
				} else if app.State != last {
					if bar != nil {
						bar.Describe(fmt.Sprintf("%s %s", n, app.State))
						_ = bar.Set(app.ProgressPercent)
					} else if !e.json {
						fmt.Fprintf(e.stderr, "%s %s %d%%\n", time.Now().Format(time.TimeOnly), app.State, app.ProgressPercent)
					}
					last = app.State
				}
				switch {
				case err == nil && app.State == until:
					if bar != nil {
						_ = bar.Finish()
						fmt.Fprintln(e.stderr)
					}
					e.print(raw, func(w io.Writer) {
						if app.Certificate != "" {
							fmt.Fprintf(w, "%s is %s: %s\n", n, app.State, app.Certificate)
							fmt.Fprintf(w, "download it with: certflow download %s --server nginx --dir ./cert\n", app.Certificate)
						} else {
							fmt.Fprintf(w, "%s is %s\n", n, app.State)
						}
					})
					return nil
				case err == nil && (app.State == "VALIDATION_FAILED" || app.State == "WITHDRAWN"):
					if bar != nil {
						fmt.Fprintln(e.stderr)
					}
					if e.json {
						e.print(raw, nil)
					}
					return fmt.Errorf("%s is %s: %s; edit it and submit it again", n, app.State, orNone(app.FailureCause))
				}
				if time.Now().After(deadline) {
					if bar != nil {
						fmt.Fprintln(e.stderr)
					}
					return timeoutError{fmt.Errorf("%s is still %s after %v; run wait again, or see `certflow instructions %s`", n, last, timeout, n)}
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(delay):
				}
				delay = min(delay*3/2, 5*time.Second)
			}
		},
	}
	c.Flags().StringVar(&until, "until", "ISSUED", "the state to wait for")
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long (exit code 3)")
	return c
}

func orNone(s string) string {
	if s == "" {
		return "no cause given"
	}
	return s
}

func downloadCmd(e *env) *cobra.Command {
	var server, password, dir string
	var legacy, zip, force bool
	c := &cobra.Command{
		Use:   "download certificates/ID --server nginx|apache|tomcat|iis|other --dir DIR",
		Short: "Download a certificate as the files a server type needs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := name(args[0], "certificates")
			if err != nil {
				return err
			}
			st, err := choose("server", server, serverTypes)
			if err != nil {
				return err
			}
			if st == "" {
				return usagef("--server is required: %s", strings.Join(keys(serverTypes), ", "))
			}
			type bundleFile struct {
				FileName  string `json:"file_name"`
				MediaType string `json:"media_type"`
				Content   string `json:"content"`
			}
			var ans struct {
				Files    []bundleFile `json:"files"`
				Password string       `json:"password"`
				// The files in one zip (ExportCertificateResponse.archive).
				Archive *bundleFile `json:"archive"`
			}
			raw, err := e.api.Do(cmd.Context(), "POST", "/v1/"+n+":export",
				map[string]any{"server_type": st, "password": password, "legacy_pkcs12": legacy, "zip": zip}, &ans)
			if err != nil {
				return err
			}
			type file struct {
				name string
				data []byte
				mode os.FileMode
			}
			var files []file
			for _, f := range ans.Files {
				b, err := base64.StdEncoding.DecodeString(f.Content)
				if err != nil || f.FileName == "" || filepath.Base(f.FileName) != f.FileName || strings.HasPrefix(f.FileName, ".") {
					return fmt.Errorf("the API sent a file %q the CLI will not write", f.FileName)
				}
				files = append(files, file{f.FileName, b, fileMode(f.FileName, f.MediaType)})
			}
			if zip && ans.Archive != nil {
				b, err := base64.StdEncoding.DecodeString(ans.Archive.Content)
				if err != nil {
					return fmt.Errorf("the API sent an archive that is not base64: %w", err)
				}
				files = append(files, file{strings.ToLower(server) + "-bundle.zip", b, 0o600})
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return usageError{err}
			}
			if !force {
				for _, f := range files {
					if _, err := os.Stat(filepath.Join(dir, f.name)); err == nil {
						return usagef("%s exists; give --force to replace it, or another --dir", filepath.Join(dir, f.name))
					}
				}
			}
			for _, f := range files {
				p := filepath.Join(dir, f.name)
				if err := os.WriteFile(p, f.data, f.mode); err != nil {
					return err
				}
				if err := os.Chmod(p, f.mode); err != nil {
					return err
				}
			}
			if e.json {
				e.print(raw, nil)
				return nil
			}
			for _, f := range files {
				fmt.Fprintf(e.stdout, "wrote %s (%v)\n", filepath.Join(dir, f.name), f.mode)
			}
			if ans.Password != "" && password == "" {
				fmt.Fprintf(e.stderr, "keystore password: %s\n(shown this once: keep it with the files)\n", ans.Password)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&server, "server", "", "server type: "+strings.Join(keys(serverTypes), ", "))
	f.StringVar(&password, "password", "", "password of the PKCS#12/JKS files (default: generated and shown once)")
	f.BoolVar(&legacy, "legacy", false, "the older PKCS#12 encoding, for old Windows/IIS")
	f.BoolVar(&zip, "zip", false, "also write the files as one zip")
	f.StringVar(&dir, "dir", ".", "folder to write the files into")
	f.BoolVar(&force, "force", false, "replace files that exist")
	return c
}

// fileMode is 0600 for anything that holds a key (or may: keystores), 0644
// for certificates alone.
func fileMode(name, media string) os.FileMode {
	n := strings.ToLower(name)
	if strings.Contains(n, "key") || strings.HasSuffix(n, ".pfx") || strings.HasSuffix(n, ".p12") || strings.HasSuffix(n, ".jks") || strings.Contains(media, "pkcs12") {
		return 0o600
	}
	return 0o644
}

func reissueCmd(e *env) *cobra.Command {
	var domainList []string
	var csrFile, keyAlg, requestID string
	c := &cobra.Command{
		Use:   "reissue applications/ID [--domain NAME ...] [--csr file]",
		Short: "Reissue an issued application's certificate within its subscription",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := name(args[0], "applications")
			if err != nil {
				return err
			}
			if requestID == "" {
				requestID = client.NewRequestID()
			}
			body := map[string]any{"request_id": requestID}
			if len(domainList) > 0 {
				body["domains"] = domainList
			}
			k, err := choose("key-algorithm", keyAlg, keyAlgorithms)
			if err != nil {
				return err
			}
			if k != "" {
				body["key_algorithm"] = k
			}
			if csrFile != "" {
				pem, err := os.ReadFile(csrFile)
				if err != nil {
					return usageError{err}
				}
				body["csr"] = string(pem)
			}
			var app application
			raw, err := e.api.Do(cmd.Context(), "POST", "/v1/"+n+":reissue", body, &app)
			if err != nil {
				return err
			}
			e.print(raw, func(w io.Writer) {
				fmt.Fprintf(w, "%s is %s (%d%%)\n", app.Name, app.State, app.ProgressPercent)
				writeInstructions(w, app)
				fmt.Fprintf(w, "then: certflow wait %s\n", app.Name)
			})
			return nil
		},
	}
	c.Flags().StringArrayVar(&domainList, "domain", nil, "the names of the new certificate (default: the same)")
	c.Flags().StringVar(&csrFile, "csr", "", "your own PEM CSR for the new certificate")
	c.Flags().StringVar(&keyAlg, "key-algorithm", "", "key the service makes: "+strings.Join(keys(keyAlgorithms), ", "))
	c.Flags().StringVar(&requestID, "request-id", "", "makes a retry safe (default: new)")
	return c
}

func revokeCmd(e *env) *cobra.Command {
	var reason, requestID string
	c := &cobra.Command{
		Use:   "revoke certificates/ID --reason superseded|key-compromise|...",
		Short: "Revoke a certificate",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := name(args[0], "certificates")
			if err != nil {
				return err
			}
			r, err := choose("reason", reason, revocationReasons)
			if err != nil {
				return err
			}
			if r == "" {
				return usagef("--reason is required: %s", strings.Join(keys(revocationReasons), ", "))
			}
			if requestID == "" {
				requestID = client.NewRequestID()
			}
			var cert struct {
				Name  string `json:"name"`
				State string `json:"state"`
			}
			raw, err := e.api.Do(cmd.Context(), "POST", "/v1/"+n+":revoke", map[string]any{"reason": r, "request_id": requestID}, &cert)
			if err != nil {
				return err
			}
			e.print(raw, func(w io.Writer) { fmt.Fprintf(w, "%s is %s\n", cert.Name, cert.State) })
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why: "+strings.Join(keys(revocationReasons), ", "))
	c.Flags().StringVar(&requestID, "request-id", "", "makes a retry safe (default: new)")
	return c
}
