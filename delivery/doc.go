// Package delivery is the one path every message takes into Basalt and
// out of it. In: SMTP, LMTP, submission, the webmail and administrative
// bulletins call Agent, which checks senders and recipients as the SMTP
// dialogue goes (RFC 5321 3.3), resolves recipients through the store
// (exact address, domain aliases, alias patterns, catch-all), applies the
// limits, runs the filter chain, adds the trace headers and stores the
// message, answering only once it is durable. Out: messages for other
// domains go to the durable outbound queue, which relays them through a
// smarthost with retries and returns DSNs (RFC 3464) on failure.
package delivery
