// Package filter parses the small, strict subset of Google AIP-160 list
// filters that list methods accept: equality terms joined by AND, such as
//
//	application = "applications/abc" AND state = PENDING
package filter

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Filter is a conjunction of equality terms, field -> value.
type Filter map[string]string

// Error is a filter the caller must fix; Error() says what is wrong and which
// fields are allowed.
type Error struct {
	Filter string // as given
	Pos    int    // byte offset in Filter where the problem was found
	Detail string // what is wrong and how to fix it

	allowed []string // for Error; Detail names them only when the field is unknown
}

func (e *Error) Error() string {
	fields := "none"
	if len(e.allowed) > 0 {
		fields = strings.Join(e.allowed, ", ")
	}
	return fmt.Sprintf("invalid filter %q at position %d: %s (allowed fields: %s)", e.Filter, e.Pos, e.Detail, fields)
}

// Parse parses s: terms `field = value` joined by the keyword AND (upper
// case, as in AIP-160). Values are bare words ([A-Za-z0-9_./-]+) or
// double-quoted strings with \" and \\ escapes. Whitespace around tokens is
// optional (`state=ISSUED` is fine). Only the fields named in allowed may
// appear (an unknown field is an error naming the allowed ones); a field may
// appear once. The empty or all-space string gives an empty Filter and no
// error. Anything else (OR, NOT, parentheses, other operators like != < >,
// missing value, unterminated quote, trailing AND) is an *Error.
func Parse(s string, allowed ...string) (Filter, error) {
	fields := Fields{}
	for _, a := range allowed {
		fields[a] = nil
	}
	terms, err := parseTerms(s, allowed, fields)
	if err != nil {
		return nil, err
	}
	f := Filter{}
	for _, t := range terms {
		f[t.Field] = t.Value
	}
	return f, nil
}

// Term is one `field op value` of a filter.
type Term struct {
	Field, Op, Value string
	// Pos is the byte offset of the field in the filter, for messages.
	Pos int
}

// Fields are the fields a filter may name, each with the operators it
// takes besides "=" ("<", "<=", ">", ">="); a field with none takes only
// "=". A field listing operators takes "=" only if it lists it too.
type Fields map[string][]string

// ParseTerms parses s as Parse does, allowing the comparison operators
// each field lists in fields, and returns the terms in order. A caller
// checks the values (a time, an enum) and reports a bad one with
// (*Error).At.
func ParseTerms(s string, fields Fields) ([]Term, error) {
	return ParseRanges(s, fields)
}

// ParseRanges is ParseTerms, except that each field named in ranges may
// appear twice: once with a lower bound (> or >=) and once with an upper
// bound (< or <=), as in `time >= "2026-01-01T00:00:00Z" AND time < "2026-02-01T00:00:00Z"`.
func ParseRanges(s string, fields Fields, ranges ...string) ([]Term, error) {
	allowed := make([]string, 0, len(fields))
	for f := range fields {
		allowed = append(allowed, f)
	}
	slices.Sort(allowed)
	p := &parser{src: s, allowed: allowed, fields: fields, ranges: ranges}
	terms, err := p.parse()
	if err != nil {
		return nil, err
	}
	return terms, nil
}

// lower reports whether op bounds a range from below.
func lower(op string) bool { return op == ">" || op == ">=" }

// clash reports whether a term of field with op may not join terms f.
func (p *parser) clash(f []Term, field, op string) bool {
	n := 0
	for _, t := range f {
		if t.Field != field {
			continue
		}
		n++
		if !slices.Contains(p.ranges, field) || op == "=" || t.Op == "=" || lower(t.Op) == lower(op) {
			return true
		}
	}
	return n > 1
}

// At is an *Error about the value of t in filter s, for a value the
// caller found wrong after parsing.
func At(s string, t Term, format string, args ...any) *Error {
	return &Error{Filter: s, Pos: t.Pos, Detail: fmt.Sprintf(format, args...)}
}

func parseTerms(s string, allowed []string, fields Fields) ([]Term, *Error) {
	p := &parser{src: s, allowed: allowed, fields: fields}
	return p.parse()
}

// ops returns the operators field takes.
func (p *parser) ops(field string) []string {
	ops := p.fields[field]
	if len(ops) == 0 {
		return []string{"="}
	}
	return ops
}

type tokenKind int

const (
	tokEOF    tokenKind = iota
	tokWord             // bare word, including the keywords
	tokString           // double-quoted string; text is the unescaped value
	tokEquals
	tokOther // anything the grammar does not allow; text says what
)

type token struct {
	kind tokenKind
	pos  int
	text string
}

// keywords of AIP-160 that may not be used as bare values or fields.
var keywords = []string{"AND", "OR", "NOT"}

type parser struct {
	src     string
	pos     int
	allowed []string
	fields  Fields
	ranges  []string
}

func (p *parser) errorf(pos int, format string, args ...any) *Error {
	return &Error{Filter: p.src, Pos: pos, Detail: fmt.Sprintf(format, args...), allowed: p.allowed}
}

func (p *parser) parse() ([]Term, *Error) {
	if !utf8.ValidString(p.src) {
		return nil, p.errorf(0, "the filter is not valid UTF-8")
	}
	var f []Term
	tok, err := p.next()
	if err != nil {
		return nil, err
	}
	if tok.kind == tokEOF {
		return f, nil
	}
	for {
		t, err := p.term(f, tok)
		if err != nil {
			return nil, err
		}
		f = append(f, t)
		tok, err = p.next()
		if err != nil {
			return nil, err
		}
		switch {
		case tok.kind == tokEOF:
			return f, nil
		case tok.kind == tokWord && tok.text == "AND":
		case tok.kind == tokWord && tok.text == "OR":
			return nil, p.errorf(tok.pos, "OR is not supported; only terms joined by AND are")
		case tok.kind == tokWord && strings.EqualFold(tok.text, "AND"):
			return nil, p.errorf(tok.pos, "keywords are upper case: write AND instead of %q", tok.text)
		default:
			return nil, p.errorf(tok.pos, "expected AND or the end of the filter, got %s; join terms with AND", describe(tok))
		}
		and := tok
		if tok, err = p.next(); err != nil {
			return nil, err
		}
		if tok.kind == tokEOF {
			return nil, p.errorf(and.pos, "the filter ends with AND; add a term after it or remove it")
		}
	}
}

// term parses `field op value` starting at tok, the field; f are the
// terms before it.
func (p *parser) term(f []Term, tok token) (Term, *Error) {
	switch {
	case tok.kind == tokWord && tok.text == "NOT":
		return Term{}, p.errorf(tok.pos, "NOT is not supported; only equality terms joined by AND are")
	case tok.kind == tokWord && slices.Contains(keywords, tok.text):
		return Term{}, p.errorf(tok.pos, "expected a field name, got the keyword %s", tok.text)
	case tok.kind == tokOther && tok.text == "(":
		return Term{}, p.errorf(tok.pos, "parentheses are not supported; join terms with AND")
	case tok.kind != tokWord:
		return Term{}, p.errorf(tok.pos, "expected a field name, got %s", describe(tok))
	}
	field := tok
	if !slices.Contains(p.allowed, field.text) {
		if len(p.allowed) == 0 {
			return Term{}, p.errorf(field.pos, "unknown field %q; this list cannot be filtered", field.text)
		}
		return Term{}, p.errorf(field.pos, "unknown field %q; use one of %s", field.text, strings.Join(p.allowed, ", "))
	}
	if len(p.ranges) == 0 && slices.ContainsFunc(f, func(t Term) bool { return t.Field == field.text }) {
		return Term{}, p.errorf(field.pos, "field %q appears more than once; give it one value", field.text)
	}

	op, err := p.next()
	if err != nil {
		return Term{}, err
	}
	ops := p.ops(field.text)
	switch {
	case op.kind == tokEOF:
		return Term{}, p.errorf(op.pos, "missing \"=\" and a value after %q", field.text)
	case (op.kind == tokEquals || op.kind == tokOther) && slices.Contains(ops, op.text):
	case (op.kind == tokEquals || op.kind == tokOther) && slices.Equal(ops, []string{"="}):
		return Term{}, p.errorf(op.pos, "unsupported operator %q; only \"=\" is supported", op.text)
	case op.kind == tokEquals || op.kind == tokOther:
		return Term{}, p.errorf(op.pos, "unsupported operator %q for %q; use one of %s", op.text, field.text, strings.Join(ops, " "))
	default:
		return Term{}, p.errorf(op.pos, "expected an operator after %q, got %s", field.text, describe(op))
	}
	if len(p.ranges) > 0 && p.clash(f, field.text, op.text) {
		if slices.Contains(p.ranges, field.text) {
			return Term{}, p.errorf(field.pos, "field %q appears more than once; give it one value, or one lower (> >=) and one upper (< <=) bound", field.text)
		}
		return Term{}, p.errorf(field.pos, "field %q appears more than once; give it one value", field.text)
	}

	val, err := p.next()
	if err != nil {
		return Term{}, err
	}
	switch {
	case val.kind == tokString:
	case val.kind == tokWord && slices.Contains(keywords, val.text):
		return Term{}, p.errorf(val.pos, "%s is a keyword; quote it to use it as a value: %s %s \"%s\"", val.text, field.text, op.text, val.text)
	case val.kind == tokWord:
	case val.kind == tokEOF:
		return Term{}, p.errorf(val.pos, "missing value after %q", field.text+" "+op.text)
	default:
		return Term{}, p.errorf(val.pos, "expected a value after %q, got %s; quote values that are not plain words", field.text+" "+op.text, describe(val))
	}
	return Term{Field: field.text, Op: op.text, Value: val.text, Pos: field.pos}, nil
}

// describe names a token for an error message.
func describe(t token) string {
	switch t.kind {
	case tokEOF:
		return "the end of the filter"
	case tokString:
		return fmt.Sprintf("the string %q", t.text)
	case tokEquals:
		return `"="`
	}
	return fmt.Sprintf("%q", t.text)
}

func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

func isWordByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '_', c == '.', c == '/', c == '-':
		return true
	}
	return false
}

// next skips whitespace and returns the next token.
func (p *parser) next() (token, *Error) {
	for p.pos < len(p.src) && isSpace(p.src[p.pos]) {
		p.pos++
	}
	start := p.pos
	if start == len(p.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	c := p.src[start]
	switch {
	case isWordByte(c):
		for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
			p.pos++
		}
		return token{kind: tokWord, pos: start, text: p.src[start:p.pos]}, nil
	case c == '"':
		return p.quoted()
	case c == '=':
		p.pos++
		if p.pos < len(p.src) && p.src[p.pos] == '=' {
			// Tell "==" apart from "= =" so the message can name it.
			p.pos++
			return token{kind: tokOther, pos: start, text: "=="}, nil
		}
		return token{kind: tokEquals, pos: start, text: "="}, nil
	case c == '!' || c == '<' || c == '>':
		p.pos++
		if p.pos < len(p.src) && p.src[p.pos] == '=' {
			p.pos++
		}
		return token{kind: tokOther, pos: start, text: p.src[start:p.pos]}, nil
	case c == '\'':
		return token{}, p.errorf(start, "single quotes are not supported; use double quotes")
	}
	_, size := utf8.DecodeRuneInString(p.src[start:])
	p.pos += size
	return token{kind: tokOther, pos: start, text: p.src[start:p.pos]}, nil
}

// quoted scans a double-quoted string at p.pos.
func (p *parser) quoted() (token, *Error) {
	start := p.pos
	var b strings.Builder
	for i := start + 1; i < len(p.src); i++ {
		switch c := p.src[i]; c {
		case '"':
			p.pos = i + 1
			return token{kind: tokString, pos: start, text: b.String()}, nil
		case '\\':
			if i+1 == len(p.src) {
				return token{}, p.errorf(start, "unterminated string; close it with \"")
			}
			i++
			if e := p.src[i]; e != '"' && e != '\\' {
				r, _ := utf8.DecodeRuneInString(p.src[i:])
				return token{}, p.errorf(i-1, "unsupported escape %q; only \\\" and \\\\ are allowed", `\`+string(r))
			}
			b.WriteByte(p.src[i])
		default:
			b.WriteByte(c)
		}
	}
	return token{}, p.errorf(start, "unterminated string; close it with \"")
}
