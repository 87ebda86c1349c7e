// Package fake holds the test doubles that the packages' tests share: a
// clock that moves only when told, the protocol's events, and in-memory
// stand-ins for the stores and services the code under test depends on.
//
// Only tests import it. It imports nothing of this module but authz, so
// that the in-package tests of oauth and token can use it without an
// import cycle.
package fake
