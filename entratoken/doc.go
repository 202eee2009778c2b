// Package entratoken is what the client layers of entraredis (package
// entraredis for go-redis, package rueidisentra for rueidis) share with
// their users about the token: its Options, the Status snapshot and its
// states, the events passed to the callbacks, and the errors. It imports
// neither go-redis nor rueidis, nor any feature of a client layer; the
// refresher itself is internal to the module.
package entratoken
