// Package identity tells which values are the same service: a service is
// its *core.Base, whatever type it is seen through, so that a service
// required as *Store by one parent and as *core.Base by another is one
// service in graphs and probes.
package identity

import (
	"reflect"
	"unsafe"

	"github.com/coreservice/coreservice/core"
)

var (
	baseType    = reflect.TypeFor[core.Base]()
	basePtrType = reflect.TypeFor[*core.Base]()
)

// base is the key of a service built on a core.Base: that Base's address.
type base struct{ p unsafe.Pointer }

// Of returns a comparable key identifying the service v: the address of
// the core.Base that v is or embeds (at any depth, by pointer or by
// value), else v itself when its type is comparable, else a key of its
// own, equal to no other. It never panics, also for a nil embedded
// *core.Base.
func Of(v any) any {
	if k, ok := baseOf(reflect.ValueOf(v)); ok {
		return k
	}
	if v != nil && reflect.TypeOf(v).Comparable() {
		return v
	}
	return new(int)
}

// baseOf finds the core.Base inside v.
func baseOf(v reflect.Value) (base, bool) {
	for v.IsValid() {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				return base{}, false
			}
			if v.Type() == basePtrType {
				return base{v.UnsafePointer()}, true
			}
			v = v.Elem()
		case reflect.Interface:
			if v.IsNil() {
				return base{}, false
			}
			v = v.Elem()
		case reflect.Struct:
			if v.Type() == baseType {
				if !v.CanAddr() {
					return base{}, false
				}
				return base{v.Addr().UnsafePointer()}, true
			}
			f, ok := v.Type().FieldByName("Base")
			if !ok || !f.Anonymous || (f.Type != baseType && f.Type != basePtrType) {
				return base{}, false
			}
			fv, err := v.FieldByIndexErr(f.Index)
			if err != nil { // a nil embedded pointer on the way
				return base{}, false
			}
			v = fv
		default:
			return base{}, false
		}
	}
	return base{}, false
}
