// Package leader runs work on one replica of a service at a time: the one
// that leads an election held on a store built for it (contrib/etcd).
package leader
