// Package config reads a service's settings from flags, with environment
// variables as defaults, so the same binary runs from a shell, a container
// or the embedded suite. Every setting has a documented default.
package config

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// Set is a flag set whose flags fall back to environment variables.
type Set struct {
	FS   *flag.FlagSet
	errs []string
}

// New returns a Set named for the program.
func New(name string) *Set {
	return &Set{FS: flag.NewFlagSet(name, flag.ContinueOnError)}
}

// String defines a string setting: flag -name, env $env, default def.
func (s *Set) String(p *string, name, env, def, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		def = v
	}
	s.FS.StringVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
}

// Duration defines a duration setting.
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Sprintf("%s=%q: %v", env, v, err))
		} else {
			def = d
		}
	}
	s.FS.DurationVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
}

// Int defines an integer setting.
func (s *Set) Int(p *int, name, env string, def int, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Sprintf("%s=%q: not a number", env, v))
		} else {
			def = n
		}
	}
	s.FS.IntVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
}

// Float defines a floating-point setting.
func (s *Set) Float(p *float64, name, env string, def float64, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			s.errs = append(s.errs, fmt.Sprintf("%s=%q: not a number", env, v))
		} else {
			def = f
		}
	}
	s.FS.Float64Var(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
}

// Bool defines a boolean setting.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Sprintf("%s=%q: not true/false", env, v))
		} else {
			def = b
		}
	}
	s.FS.BoolVar(p, name, def, fmt.Sprintf("%s (env %s)", usage, env))
}

// Parse parses args; bad environment values and stray arguments are errors.
func (s *Set) Parse(args []string) error {
	if err := s.FS.Parse(args); err != nil {
		return err
	}
	if s.FS.NArg() > 0 {
		s.errs = append(s.errs, fmt.Sprintf("unexpected arguments: %s", strings.Join(s.FS.Args(), " ")))
	}
	if len(s.errs) > 0 {
		return fmt.Errorf("bad configuration: %s", strings.Join(s.errs, "; "))
	}
	return nil
}

// Logger builds the process logger from a level name (debug, info, warn,
// error) and format (text or json).
func Logger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// SecretEnv reads a secret setting (a key, a password) from the environment
// variable env only. Secrets are never flags: a command line is readable by
// every user of the machine (ps, /proc/<pid>/cmdline) and stays in shell
// history. Offer a file flag beside it for the secret's path.
func (s *Set) SecretEnv(p *string, env string) {
	*p = os.Getenv(env)
}
