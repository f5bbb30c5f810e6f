// Package values answers two questions about interface values that the
// library asks of user input: is it nil (also a typed nil, whose methods
// would panic), and are two values the same (without panicking on types
// that cannot be compared).
package values

import "reflect"

// IsNil reports whether v is nil or a typed nil pointer, map, slice, func,
// channel or interface.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// Same reports whether a and b are equal values of one comparable type.
// Values of a type that cannot be compared are never the same, rather than
// a panic.
func Same(a, b any) bool {
	if a == nil || b == nil {
		return a == b
	}
	t := reflect.TypeOf(a)
	if t != reflect.TypeOf(b) || !t.Comparable() {
		return false
	}
	return a == b
}
