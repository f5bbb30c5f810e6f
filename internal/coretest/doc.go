// Package coretest holds fakes and helpers shared by the tests of the
// module's packages. It is imported by tests only.
package coretest
