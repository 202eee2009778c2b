// Package entraredisotel exports the health of entraredis' Microsoft Entra
// tokens, and Azure's maintenance events, as OpenTelemetry metrics.
//
// One call wires a client (or Credentials, or a rueidisentra client through
// StatusFunc):
//
//	unregister, err := entraredisotel.InstrumentMetrics(rdb, nil) // the global MeterProvider
//	...
//	defer unregister()
//
// Every instrument is observable (asynchronous): one callback, run by the
// MeterProvider's reader at each collection, reads the client's Status once
// and reports every instrument from it. The command path does no work for
// the metrics.
//
//	name                                  instrument        unit          attributes
//	entraredis.token.remaining            gauge (float64)   s
//	entraredis.token.rotations            counter           {rotation}
//	entraredis.token.requests             counter           {request}
//	entraredis.token.refresh.failures     counter           {failure}     error.type
//	entraredis.connection.reauths         counter           {reauth}
//	entraredis.connection.reauth.refused  counter           {reauth}
//	entraredis.connection.count           up-down counter   {connection}  entraredis.connection.token
//	entraredis.maintenance.events         counter           {event}       entraredis.maintenance.type
//	entraredis.maintenance.malformed      counter           {message}
//
// What they report:
//
//   - entraredis.token.remaining: the time until the token in use expires;
//     absent before the first token and after Close, 0 once expired.
//   - entraredis.token.rotations: tokens installed after the first one.
//   - entraredis.token.requests: GetToken calls to the credential, retries included.
//   - entraredis.token.refresh.failures: failed refresh attempts; error.type
//     is their kind (entratoken.FailureKind: timeout, canceled,
//     no_object_id, malformed_token, invalid_scope, credential_unavailable,
//     authentication_failed, other), never an error text, a token or a secret.
//   - entraredis.connection.reauths and entraredis.connection.reauth.refused:
//     AUTHs with a new token on live connections that the server accepted
//     and refused.
//   - entraredis.connection.count: live connections, with
//     entraredis.connection.token "current" (on the token in use) or
//     "older" (not moved to it yet), as the client layer counts them.
//   - entraredis.maintenance.events: Azure Cache for Redis maintenance
//     notifications received (Options.MaintenanceEvents), by
//     entraredis.maintenance.type: a type of package azevents, or "other"
//     for one it does not know (bounded cardinality).
//   - entraredis.maintenance.malformed: notifications that did not parse
//     (dropped and logged).
//
// Names and units follow the OpenTelemetry semantic conventions: a
// dot-separated namespace, UCUM units ("s"), curly-brace annotations for
// counts, no "_total" suffix (exporters add their own), error.type for the
// kind of a failure.
package entraredisotel
