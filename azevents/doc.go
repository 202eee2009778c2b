// Package azevents reads the maintenance notifications that Azure Cache for
// Redis publishes on the pub/sub channel AzureRedisEvents: a typed Event, a
// strict parser, the wire encoding (for emulators and tests) and a Tracker
// that folds events into a Status (the last event, the next announced
// maintenance, counts per type).
//
// A notification is a list of pipe-separated Field|Value pairs:
//
//	NotificationType|NodeMaintenanceStarting|StartTimeInUTC|2020-10-14T16:26:10|IsReplica|False|IPAddress|52.158.249.185|SSLPort|15001|NonSSLPort|13001
//
// Azure Managed Redis does not publish these notifications.
//
// The package imports no Redis client: the go-redis layer (package
// entraredis), the emulator (package entraredistest) and the metrics
// (package entraredisotel) share it.
package azevents
