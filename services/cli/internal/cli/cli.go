// Package cli is the certflow command: a customer's tool over the public
// JSON API. Commands parse with cobra; wait shows progress with
// progressbar; YAML application files map onto the API's JSON with
// sigs.k8s.io/yaml.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/certflow/certflow/services/cli/internal/client"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailed  = 1 // the API refused, or the application failed
	ExitUsage   = 2 // bad flags, arguments or files
	ExitTimeout = 3 // wait gave up
)

// usageError is a mistake in how the command was called.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// timeoutError is a wait that ran out of time.
type timeoutError struct{ error }

// env is what a command runs with.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	json           bool
	api            *client.Client
}

// print writes the API's JSON answer with --output json, or text.
func (e *env) print(raw json.RawMessage, text func(w io.Writer)) {
	if e.json {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(v)
			return
		}
		fmt.Fprintln(e.stdout, string(raw))
		return
	}
	text(e.stdout)
}

// Run runs the command line args and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var u usageError
	var tmo timeoutError
	var api *client.Error
	switch {
	case errors.As(err, &u), isCobraUsage(err):
		fmt.Fprintf(stderr, "certflow: %v\nSee 'certflow --help'.\n", err)
		return ExitUsage
	case errors.As(err, &tmo):
		fmt.Fprintf(stderr, "certflow: %v\n", err)
		return ExitTimeout
	case errors.As(err, &api):
		fmt.Fprintf(stderr, "certflow: the API refused: %v\n", api)
		if hint := hintFor(api); hint != "" {
			fmt.Fprintf(stderr, "%s\n", hint)
		}
		return ExitFailed
	default:
		fmt.Fprintf(stderr, "certflow: %v\n", err)
		return ExitFailed
	}
}

func hintFor(e *client.Error) string {
	switch e.HTTPStatus {
	case 401:
		return "Set a valid API key in CERTFLOW_API_KEY or api_key in the config file."
	case 404:
		return "Check the name: it must be one of this account's resources (for example applications/abc)."
	case 429, 503:
		return "The service is busy: retry in a few seconds."
	}
	return ""
}

func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "required flag", "accepts ", "requires at least", "invalid argument", "flag needs an argument"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func newRoot(e *env) *cobra.Command {
	var apiURL, configPath, output string
	root := &cobra.Command{
		Use:           "certflow",
		Short:         "Buy, apply for, validate, download, reissue and revoke certificates with certflow",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "text":
			case "json":
				e.json = true
			default:
				return usagef("--output %q: want text or json", output)
			}
			path, explicit := configPath, configPath != ""
			if !explicit {
				path = defaultConfigPath()
			}
			c, err := loadConfig(path, explicit, apiURL, e.getenv)
			if err != nil {
				return usageError{err}
			}
			if c.APIKey == "" {
				return usagef("no API key: set CERTFLOW_API_KEY, or api_key in %s", path)
			}
			e.api = client.New(c.APIURL, c.APIKey)
			return nil
		},
	}
	root.PersistentFlags().StringVar(&apiURL, "api-url", "", "the certflow API (env CERTFLOW_API_URL; default "+DefaultAPIURL+")")
	root.PersistentFlags().StringVar(&configPath, "config", "", "config file with api_url and api_key (default $XDG_CONFIG_HOME/certflow/config.yaml)")
	root.PersistentFlags().StringVarP(&output, "output", "o", "text", "text, or json: the API's answers only, for scripts")
	root.AddCommand(buyCmd(e), applyCmd(e), instructionsCmd(e), waitCmd(e), getCmd(e), downloadCmd(e), reissueCmd(e), revokeCmd(e))
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

// Main is the binary's entry point.
func Main() {
	os.Exit(Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
