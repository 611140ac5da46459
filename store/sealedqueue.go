package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"basalt/crypt"
	"basalt/message"
	"basalt/store/blob"
	"basalt/store/internal/spine"
)

// A message for a secure user that must wait in the outbound queue (a
// delivery deferred for a retry, a report of failures to a secure sender)
// is sealed to the user's key before it is queued, as Append would seal
// it: nothing readable of a secure user's mail reaches the disk, and the
// queue, which holds no private key, delivers it as it is (DeliverSealed).
// The queue's rows are store/outbound's; the package is the store's, as
// it holds what the mail model writes for the message.
//
// The queued file holds a package: sealedMagic, the length of a JSON head
// (big endian, 4 bytes), the head, then the message encoded as a blob
// (blob.Encode: compressed, then encrypted to the key). The head holds
// what the message's rows need and cannot be worked out without the
// plaintext, as the rows hold it for a secure user: the metadata
// encrypted, the hashes of its Message-ID and references (for threading)
// and its size.
const sealedMagic = "BQS1"

type sealedHead struct {
	PublicKey      string   `json:"publicKey"`
	Meta           []byte   `json:"meta"`
	MsgIDHash      string   `json:"msgid,omitempty"`
	RefHashes      []string `json:"refs,omitempty"`
	Size           int64    `json:"size"`
	HasAttachments bool     `json:"hasAttachments,omitempty"`
}

// errNotSealed says a queue entry's file is not a sealed package.
var errNotSealed = errors.New("not a sealed queue package")

// QueueCopy is one copy of a message the outbound queue keeps for an
// address: for Addr, as it is (Pkg nil) or sealed to the key of the
// secure user UserID (Pkg).
type QueueCopy struct {
	Addr   string
	Pkg    []byte
	UserID int64
}

// SealForQueue returns the copies the outbound queue keeps of raw for
// addr. An address that delivers to no secure user is one copy as it is.
// One that reaches secure users (the user's own address, a personal alias,
// or an alias that also reaches other users or addresses elsewhere) is
// split: each secure user's copy sealed to the user's key and addressed to
// the user, the others as they are, addressed to each user or address
// elsewhere, so that nothing readable of a secure user's mail waits in the
// queue however the address was written.
func (s *Store) SealForQueue(ctx context.Context, addr string, raw []byte) ([]QueueCopy, error) {
	res, err := s.Resolve(ctx, addr)
	if errors.Is(err, ErrUnknownLocal) || err == nil && !res.Local {
		return []QueueCopy{{Addr: addr}}, nil
	}
	if err != nil {
		return nil, err
	}
	users := make([]User, 0, len(res.Users))
	anySecure := false
	for _, id := range res.Users {
		u, err := s.UserByID(ctx, id)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
		anySecure = anySecure || u.Secure && u.PublicKey != ""
	}
	if !anySecure {
		return []QueueCopy{{Addr: addr}}, nil
	}
	var out []QueueCopy
	for _, u := range users {
		if !u.Secure || u.PublicKey == "" {
			out = append(out, QueueCopy{Addr: u.Address})
			continue
		}
		to := u.Address
		if len(users) == 1 && len(res.External) == 0 {
			to = addr // the user alone: the address as written (a personal alias)
		}
		pkg, err := s.sealForQueue(ctx, u, raw)
		if err != nil {
			return nil, fmt.Errorf("seal for user %d: %w", u.ID, err)
		}
		out = append(out, QueueCopy{Addr: to, Pkg: pkg, UserID: u.ID})
	}
	for _, x := range res.External {
		out = append(out, QueueCopy{Addr: x})
	}
	return out, nil
}

// sealForQueue packages raw sealed to u's key.
func (s *Store) sealForQueue(ctx context.Context, u User, raw []byte) ([]byte, error) {
	rcpt, err := crypt.ParseRecipient(u.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("user key: %w", err)
	}
	p, err := parse(raw)
	if err != nil {
		return nil, err
	}
	head := sealedHead{PublicKey: u.PublicKey, MsgIDHash: p.msgidHash, Size: p.size, HasAttachments: p.info.HasAttachments}
	for _, r := range p.refHashes {
		head.RefHashes = append(head.RefHashes, r.(string))
	}
	if head.Meta, err = sealBytes(rcpt, p.meta); err != nil {
		return nil, fmt.Errorf("seal metadata: %w", err)
	}
	encoded, _, err := s.blobs.Encode(ctx, bytes.NewReader(raw), func(w io.Writer) (io.WriteCloser, error) { return crypt.Encrypt(w, rcpt) })
	if err != nil {
		return nil, err
	}
	hb, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(sealedMagic)+4+len(hb)+len(encoded))
	out = append(out, sealedMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(hb)))
	out = append(out, hb...)
	return append(out, encoded...), nil
}

// openSealed splits a package into its head and its encoded blob.
func openSealed(pkg []byte) (sealedHead, []byte, error) {
	var head sealedHead
	n := len(sealedMagic) + 4
	if len(pkg) < n || string(pkg[:len(sealedMagic)]) != sealedMagic {
		return head, nil, errNotSealed
	}
	hl := int(binary.BigEndian.Uint32(pkg[len(sealedMagic):n]))
	if hl > len(pkg)-n {
		return head, nil, errNotSealed
	}
	if err := json.Unmarshal(pkg[n:n+hl], &head); err != nil {
		return head, nil, fmt.Errorf("%w: %v", errNotSealed, err)
	}
	return head, pkg[n+hl:], nil
}

// DeliverSealed stores a package SealForQueue made for userID in the
// user's INBOX, encrypted as it was queued, as Deliver stores a message.
// A user whose key is no longer the one it was sealed to cannot read it:
// that is refused with ErrInvalid, a permanent failure. It takes a
// spine.Key: the package's head (its size above all) is trusted, so only
// the outbound queue, which reads it from its own file, may hand one in.
func (s *Store) DeliverSealed(ctx context.Context, k spine.Key, userID int64, pkg []byte) (Appended, error) {
	k.Check()
	head, encoded, err := openSealed(pkg)
	if err != nil {
		return Appended{}, fmt.Errorf("deliver sealed message: %w", err)
	}
	// Read at the user's current serial: a limit or key changed since the
	// entry was queued (the quota raised that deferred it) must count.
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return Appended{}, fmt.Errorf("deliver sealed message: %w", err)
	}
	if !u.Secure || u.PublicKey != head.PublicKey {
		return Appended{}, fmt.Errorf("deliver sealed message: %w: sealed to a key the user no longer has", ErrInvalid)
	}
	lim, err := s.Limits(ctx, u)
	if err != nil {
		return Appended{}, fmt.Errorf("deliver sealed message: %w", err)
	}
	if err := checkAppend(lim, u.UsedBytes, head.Size, false); err != nil {
		return Appended{}, fmt.Errorf("deliver sealed message: %w", err)
	}
	p := &parsed{size: head.Size, info: &message.Info{HasAttachments: head.HasAttachments}, msgidHash: head.MsgIDHash}
	for _, r := range head.RefHashes {
		p.refHashes = append(p.refHashes, r)
	}
	m := sealed{blobID: blob.NewID(), meta: head.Meta, secure: true, publicKey: head.PublicKey}
	if s.inlineMax > 0 && head.Size <= s.inlineMax {
		m.inline = encoded
		m.blob, err = blob.EncodedInfo(encoded)
	} else {
		m.blob, err = s.blobs.PutEncoded(ctx, m.blobID, encoded)
	}
	if err != nil {
		return Appended{}, fmt.Errorf("deliver sealed message: %w", err)
	}
	req := &groupReq{d: Delivery{UserID: u.ID}, p: p, m: m, done: make(chan struct{})}
	s.group.run(ctx, s, req)
	if req.err != nil {
		s.discard(ctx, m, req.err)
		if errors.Is(req.err, errStaleKey) {
			return Appended{}, fmt.Errorf("deliver sealed message: %w: the user's key changed", ErrInvalid)
		}
		return Appended{}, fmt.Errorf("deliver sealed message: %w", req.err)
	}
	return req.out, nil
}
