// Package entraredisotel exports the health of entraredis' Microsoft Entra
// tokens as OpenTelemetry metrics.
//
// Every instrument is observable (asynchronous): its value is read from the
// client's Status once per collection, in the reader's goroutine, so the
// command path does no extra work.
//
//	| name                               | instrument            | unit         | attributes                   |
//	|------------------------------------|-----------------------|--------------|------------------------------|
//	| entraredis.token.remaining         | gauge (float64)       | s            |                              |
//	| entraredis.token.rotations         | counter               | {rotation}   |                              |
//	| entraredis.token.requests          | counter               | {request}    |                              |
//	| entraredis.token.refresh.failures  | counter               | {failure}    | error.type                   |
//	| entraredis.connection.reauths      | counter               | {reauth}     |                              |
//	| entraredis.connection.reauth.refused | counter             | {reauth}     |                              |
//	| entraredis.connection.count        | up-down counter       | {connection} | entraredis.connection.token  |
//	| entraredis.maintenance.events      | counter               | {event}      | entraredis.maintenance.type  |
//	| entraredis.maintenance.malformed   | counter               | {message}    |                              |
//
// entraredis.token.remaining is absent before the first token and after
// Close, and 0 once the token has expired. error.type is the kind of a
// failed refresh (never a token, a secret or an error text).
// entraredis.connection.token is "current" or "older" (a connection not yet
// moved to the newest token). entraredis.maintenance.type is one of the
// types of package azevents, or "other"; the maintenance instruments are
// reported only for a client subscribed to Azure's maintenance
// notifications.
package entraredisotel
