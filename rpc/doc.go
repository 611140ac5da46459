// Package rpc is Basalt's webmail API: a JSON-RPC 2.0 engine (engine.go)
// mounted on the HTTP core at /rpc, and the methods of magma's camelface
// set on it (auth, folders.*, messages.*, contacts.*, config.*,
// settings.*, changes), with the plain-HTTP endpoints the browser needs
// beside it: attachments up (/rpc/upload) and down (/rpc/blob), pushed
// changes (/rpc/events, Server-Sent Events) and the method list as an
// OpenRPC document (/rpc/openrpc.json). It reaches mail only through
// store, session and delivery; it never touches SQL or files itself.
package rpc
