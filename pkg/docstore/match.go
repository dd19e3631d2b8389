package docstore

import (
	"bytes"
	"cmp"
	"errors"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// errUnsupported: the filter uses something match does not evaluate; the
// caller asks the database instead.
var errUnsupported = errors.New("filter not evaluated in memory")

// match evaluates the part of MongoDB's query language the list filters
// use against a stored record: equality (a path through arrays matches if
// any element does), $eq, $in, $lt, $lte, $gt, $gte, several conditions
// ANDed. Anything else is errUnsupported. TestMatchAgreesWithTheDatabase
// checks it against the database on the same records.
func match(raw bson.Raw, filter bson.D) (bool, error) {
	for _, e := range filter {
		if strings.HasPrefix(e.Key, "$") {
			return false, errUnsupported
		}
		vals := valuesAt(raw, strings.Split(e.Key, "."))
		ok, err := cond(vals, e.Value)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// valuesAt collects what a dotted path reaches, descending into every
// element of an array on the way, and adding an array's elements beside
// the array itself at the end, as MongoDB compares them.
func valuesAt(doc bson.Raw, path []string) []bson.RawValue {
	v, err := doc.LookupErr(path[0])
	if err != nil {
		return nil
	}
	if len(path) == 1 {
		out := []bson.RawValue{v}
		if arr, ok := v.ArrayOK(); ok {
			elems, _ := arr.Values()
			out = append(out, elems...)
		}
		return out
	}
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		return valuesAt(v.Document(), path[1:])
	case bson.TypeArray:
		elems, _ := v.Array().Values()
		var out []bson.RawValue
		for _, el := range elems {
			if d, ok := el.DocumentOK(); ok {
				out = append(out, valuesAt(d, path[1:])...)
			}
		}
		return out
	}
	return nil
}

func cond(vals []bson.RawValue, want any) (bool, error) {
	ops, isOps := want.(bson.D)
	if !isOps || len(ops) == 0 || !strings.HasPrefix(ops[0].Key, "$") {
		return anyCompare(vals, want, func(c int) bool { return c == 0 })
	}
	for _, op := range ops {
		var ok bool
		var err error
		switch op.Key {
		case "$eq":
			ok, err = anyCompare(vals, op.Value, func(c int) bool { return c == 0 })
		case "$lt":
			ok, err = anyCompare(vals, op.Value, func(c int) bool { return c < 0 })
		case "$lte":
			ok, err = anyCompare(vals, op.Value, func(c int) bool { return c <= 0 })
		case "$gt":
			ok, err = anyCompare(vals, op.Value, func(c int) bool { return c > 0 })
		case "$gte":
			ok, err = anyCompare(vals, op.Value, func(c int) bool { return c >= 0 })
		case "$in":
			list, isList := op.Value.(bson.A)
			if !isList {
				return false, errUnsupported
			}
			for _, w := range list {
				if ok, err = anyCompare(vals, w, func(c int) bool { return c == 0 }); err != nil || ok {
					break
				}
			}
		default:
			return false, errUnsupported
		}
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// anyCompare reports whether some value compares with want as test says.
// Values of another type never match (MongoDB compares within a type for
// these operators); documents, arrays and nulls in want are unsupported.
func anyCompare(vals []bson.RawValue, want any, test func(int) bool) (bool, error) {
	typ, data, err := bson.MarshalValue(want)
	if err != nil {
		return false, errUnsupported
	}
	w := bson.RawValue{Type: typ, Value: data}
	for _, v := range vals {
		c, ok, err := compare(v, w)
		if err != nil {
			return false, err
		}
		if ok && test(c) {
			return true, nil
		}
	}
	return false, nil
}

// compare orders a and b if they are of one comparable kind.
func compare(a, b bson.RawValue) (c int, comparable bool, err error) {
	if af, ok := number(a); ok {
		bf, ok := number(b)
		if !ok {
			return 0, false, nil
		}
		return cmp.Compare(af, bf), true, nil
	}
	if a.Type != b.Type {
		return 0, false, nil
	}
	switch a.Type {
	case bson.TypeString:
		return strings.Compare(a.StringValue(), b.StringValue()), true, nil
	case bson.TypeDateTime:
		return cmp.Compare(a.DateTime(), b.DateTime()), true, nil
	case bson.TypeBoolean:
		x, y := a.Boolean(), b.Boolean()
		if x == y {
			return 0, true, nil
		}
		if !x {
			return -1, true, nil
		}
		return 1, true, nil
	case bson.TypeArray, bson.TypeEmbeddedDocument, bson.TypeNull, bson.TypeUndefined:
		return 0, false, errUnsupported
	}
	if bytes.Equal(a.Value, b.Value) {
		return 0, true, nil
	}
	return 0, false, errUnsupported // an order we do not know
}

func number(v bson.RawValue) (float64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return float64(v.Int32()), true
	case bson.TypeInt64:
		return float64(v.Int64()), true
	case bson.TypeDouble:
		return v.Double(), true
	}
	return 0, false
}
