package reauth

import (
	"github.com/entraredis/entraredis/internal/resp"
)

// entryKind is what one entry of the owed-reply queue waits for.
type entryKind uint8

const (
	entryPlain    entryKind = iota // n commands owing one reply each (run-length)
	entryBlocking                  // a blocking command: one reply, the connection cannot move meanwhile
	entryAuth                      // an AUTH the wrapper wrote: its reply is removed from the stream
	entrySub                       // a (P|S)(UN)SUBSCRIBE: one subscribe-kind frame per channel, or one error
	entryHello                     // a HELLO: one reply; a success switches the protocol
	entryReset                     // a RESET: one reply; the connection is back to its initial state
)

// subWord is the kind of a subscribe-kind frame, and of the command it answers.
type subWord uint8

const (
	subNone subWord = iota
	subSubscribe
	subUnsubscribe
	subPSubscribe
	subPUnsubscribe
	subSSubscribe
	subSUnsubscribe
)

// dynamic is the reply count of a bare UNSUBSCRIBE, PUNSUBSCRIBE or
// SUNSUBSCRIBE: one per subscription held when the server runs it (one when
// none is held), known when the entry reaches the head of the queue.
const dynamic = -1

type entry struct {
	kind  entryKind
	word  subWord // entrySub
	proto uint8   // entryHello: the protocol asked for (0: none)
	first bool    // entryAuth: the connection's first AUTH
	n     int64   // replies still owed (entryPlain: commands; entrySub: frames, or dynamic)
	got   int64   // entrySub: frames received
	gen   uint64  // entryAuth: token generation
}

// queue is the owed-reply queue: entries in the order of the commands.
type queue struct {
	q []entry
	h int // q[h:] are live
}

func (q *queue) len() int { return len(q.q) - q.h }

func (q *queue) head() *entry {
	if q.h == len(q.q) {
		return nil
	}
	return &q.q[q.h]
}

func (q *queue) push(e entry) {
	if e.kind == entryPlain && q.len() > 0 {
		if t := &q.q[len(q.q)-1]; t.kind == entryPlain {
			t.n += e.n
			return
		}
	}
	if q.h > 0 && q.h == len(q.q) {
		q.q, q.h = q.q[:0], 0
	} else if q.h >= 64 && q.h*2 >= len(q.q) {
		n := copy(q.q, q.q[q.h:])
		q.q, q.h = q.q[:n], 0
	}
	q.q = append(q.q, e)
}

func (q *queue) pop() {
	q.q[q.h] = entry{}
	q.h++
	if q.h == len(q.q) {
		q.q, q.h = q.q[:0], 0
	}
}

func (q *queue) reset() { q.q, q.h = q.q[:0], 0 }

// cmdInfo is what the tracker learned from one command.
type cmdInfo struct {
	blocking bool   // a blocking command (outside a transaction)
	retire   string // non-empty: the command makes the connection unaccountable
	reset    bool   // RESET: the connection is unauthenticated after it
	ownAuth  bool   // the client's own AUTH, or a HELLO with AUTH: the connection's identity may be another's
}

// state is the shared state of one connection: the owed-reply queue and
// everything that decides whether an AUTH may be written now. Commands update
// it from the write side, replies from the read side; Conn guards it with
// its own small lock.
type state struct {
	q queue

	// From the commands written.
	inTx       bool // a MULTI was written and no EXEC, DISCARD or RESET since
	affectNext bool // the last command (ASKING, CLIENT CACHING) applies to the next one
	replyOff   bool // CLIENT REPLY OFF was written and no CLIENT REPLY ON since: no command is answered
	skipNext   bool // CLIENT REPLY SKIP was written (not while off): the next command is not answered
	hellos     int  // HELLO entries in the queue
	subs       int  // entrySub entries in the queue
	blocked    int  // entryBlocking entries in the queue
	auths      int  // entryAuth entries in the queue

	// From the replies read.
	proto   uint8 // protocol of the replies: 2 until a HELLO 3 succeeds
	chans   int64 // channels subscribed (SUBSCRIBE)
	pats    int64 // patterns subscribed (PSUBSCRIBE)
	shards  int64 // shard channels subscribed (SSUBSCRIBE)
	gen     uint64
	retired string // non-empty: the reason the connection no longer injects
}

func newState() state { return state{proto: 2} }

// subscribed reports that the server holds subscriptions for the connection.
func (s *state) subscribed() bool { return s.chans+s.pats+s.shards > 0 }

// canInject reports whether an AUTH written now, after every command written
// so far, is run by the server outside a transaction, not in RESP2 subscribed
// mode, not between a command and the next one it applies to, not behind a
// blocking command, and answered.
func (s *state) canInject() bool {
	if s.retired != "" || s.inTx || s.affectNext || s.blocked > 0 || s.silent() {
		return false // blocked: an AUTH would wait behind the block, and save nothing; silent: its reply would be suppressed
	}
	if s.subscribed() || s.subs > 0 { // the server's subscription state is, or may be, "subscribed"
		if s.proto == 2 || s.hellos > 0 {
			return false
		}
	}
	return true
}

// unmovable reports that no AUTH can be written on the connection now and
// none will be until something else happens on it: retired, RESP2-subscribed
// or blocked.
func (s *state) unmovable() bool {
	return s.retired != "" || s.blocked > 0 || (s.proto == 2 && s.subscribed()) || s.replyOff
}

// silent reports that the server answers the next command not at all
// (CLIENT REPLY OFF, or SKIP just before it).
func (s *state) silent() bool { return s.replyOff || s.skipNext }

// pushAuth records an AUTH written by the wrapper.
func (s *state) pushAuth(gen uint64, first bool) {
	s.q.push(entry{kind: entryAuth, gen: gen, first: first})
	s.auths++
}

// retire stops injection on the connection for good.
func (s *state) retire(reason string) {
	if s.retired == "" {
		s.retired = reason
	}
}

// nameBuf holds a command name or a reply's first element in upper case.
type nameBuf [16]byte

// upperName returns e's bytes in upper case, in buf, or nil when they are
// longer than buf: no name the tracker acts on is.
func upperName(e *resp.Elem, buf *nameBuf) []byte {
	if e.Truncated() {
		return nil
	}
	return upper(e.Bytes(), buf)
}

// upper returns b in upper case, in buf, or nil when b is longer than buf.
func upper(b []byte, buf *nameBuf) []byte {
	if len(b) > len(buf) {
		return nil
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(b)]
}

// isBlocking reports whether the command f blocks: BLPOP, BRPOP, BLMOVE,
// BRPOPLPUSH, BZPOPMIN, BZPOPMAX, BLMPOP, BZMPOP, WAIT, WAITAOF, and XREAD
// or XREADGROUP with BLOCK.
func isBlocking(f *resp.Frame) bool {
	var buf nameBuf
	return blockingName(upperName(&f.Head[0], &buf), f)
}

// blockingName is isBlocking for the command's upper-cased name.
func blockingName(name []byte, f *resp.Frame) bool {
	switch {
	case alwaysBlocks(name):
		return true
	case isXRead(name):
		for i := 1; i < f.HeadLen; i++ {
			if f.Head[i].EqualFold("BLOCK") {
				return true
			}
		}
		// BLOCK may come after the elements kept in Head: assume it does.
		return f.N > int64(f.HeadLen)
	}
	return false
}

// alwaysBlocks reports the blocking commands that block whatever their arguments.
func alwaysBlocks(name []byte) bool {
	switch string(name) {
	case "BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BZPOPMIN", "BZPOPMAX", "BLMPOP", "BZMPOP", "WAIT", "WAITAOF":
		return true
	}
	return false
}

// isXRead reports XREAD and XREADGROUP, which block with a BLOCK argument.
func isXRead(name []byte) bool { return string(name) == "XREAD" || string(name) == "XREADGROUP" }

func subWordOf(e *resp.Elem) subWord {
	var buf nameBuf
	return subWordOfName(upperName(e, &buf))
}

func subWordOfName(name []byte) subWord {
	switch string(name) {
	case "SUBSCRIBE":
		return subSubscribe
	case "UNSUBSCRIBE":
		return subUnsubscribe
	case "PSUBSCRIBE":
		return subPSubscribe
	case "PUNSUBSCRIBE":
		return subPUnsubscribe
	case "SSUBSCRIBE":
		return subSSubscribe
	case "SUNSUBSCRIBE":
		return subSUnsubscribe
	}
	return subNone
}

func (w subWord) unsubscribes() bool {
	return w == subUnsubscribe || w == subPUnsubscribe || w == subSUnsubscribe
}

// special reports whether command needs the whole command frame for the
// command with this upper-cased name: every name that command treats
// otherwise than plainCommand does. (TestSpecialNames holds the two to it,
// for every command redis-server knows.)
func special(name []byte) bool {
	switch string(name) {
	case "MULTI", "EXEC", "DISCARD", "RESET", "ASKING", "CLIENT", "AUTH", "HELLO", "MONITOR", "SYNC", "PSYNC":
		return true // the named cases of command
	}
	return subWordOfName(name) != subNone || alwaysBlocks(name) || isXRead(name)
}

// plainCommand records a command that is not special: it owes one reply and
// changes nothing else the tracker follows.
func (s *state) plainCommand() {
	if s.retired != "" {
		return
	}
	s.affectNext = false
	if s.silent() {
		s.skipNext = false // the skipped command; with replies off, nothing is owed
		return
	}
	s.q.push(entry{kind: entryPlain, n: 1})
}

// plainOnly reports whether only replies to plain commands are owed, and
// how many, in a state where a plain command and its reply change nothing
// but that number: not retired, not after a command that applies to the
// next one, and not RESP2-subscribed (see plainCommand and plainReply).
func (s *state) plainOnly() (n int64, ok bool) {
	if s.retired != "" || s.affectNext || s.silent() || s.proto == 2 && s.subscribed() {
		return 0, false
	}
	switch s.q.len() {
	case 0:
		return 0, true
	case 1:
		if h := s.q.head(); h.kind == entryPlain {
			return h.n, true
		}
	}
	return 0, false
}

// plainReply records a reply frame that is neither a push nor an attribute,
// when it answers a plain command at the head of the queue outside RESP2
// subscribed mode (where reply would classify it the same way, and find
// nothing to strip). It reports false, changing nothing, otherwise: the
// frame then goes through classify and reply.
func (s *state) plainReply() bool {
	h := s.q.head()
	if h == nil || h.kind != entryPlain || s.proto == 2 && s.subscribed() {
		return false
	}
	h.n--
	if h.n == 0 {
		s.q.pop()
	}
	return true
}

// command records one complete command written by the client. f is the
// command frame (an array of bulk strings).
func (s *state) command(f *resp.Frame) cmdInfo {
	if s.retired != "" {
		return cmdInfo{}
	}
	if f.Kind != resp.Array || f.N < 1 || f.Head[0].Kind() != resp.BulkString {
		s.retire("a command that is not an array of bulk strings")
		return cmdInfo{retire: s.retired}
	}
	var buf nameBuf
	name := upperName(&f.Head[0], &buf)
	s.affectNext = false
	var info cmdInfo
	// The server answers this command unless replies are off, or it is the
	// one CLIENT REPLY SKIP skips (CLIENT REPLY itself decides below).
	silent := s.silent()
	if name == nil || string(name) != "CLIENT" || f.HeadLen < 2 || !f.Head[1].EqualFold("REPLY") {
		s.skipNext = false
		if silent && !silentOK(name) {
			// Its reply, suppressed, is what the tracker would follow it by.
			s.retire("a command that changes the connection's state while CLIENT REPLY suppresses its reply")
			_, helloOK := helloProto(f)
			return cmdInfo{retire: s.retired, ownAuth: string(name) == "AUTH" || string(name) == "HELLO" && !helloOK}
		}
	}
	plain := func() {
		if !silent {
			s.q.push(entry{kind: entryPlain, n: 1})
		}
	}
	switch string(name) {
	case "MULTI":
		s.inTx = true
		plain()
	case "EXEC", "DISCARD":
		s.inTx = false
		plain()
	case "RESET":
		s.inTx = false
		s.q.push(entry{kind: entryReset})
		info.reset = true
	case "ASKING":
		s.affectNext = true
		plain()
	case "CLIENT":
		switch {
		case f.HeadLen > 1 && f.Head[1].EqualFold("CACHING"):
			s.affectNext = true
		case f.HeadLen > 1 && f.Head[1].EqualFold("REPLY"):
			s.clientReply(f)
			info.retire = s.retired
			return info
		}
		plain()
	case "AUTH":
		s.retire("the application sent its own AUTH")
		info.ownAuth = true
		plain()
	case "HELLO":
		proto, ok := helloProto(f)
		if !ok {
			s.retire("a HELLO with arguments other than a protocol version and SETNAME (AUTH?)")
			info.ownAuth = true
			plain()
			break
		}
		if s.inTx {
			s.retire("a HELLO inside MULTI")
			plain()
			break
		}
		s.q.push(entry{kind: entryHello, proto: proto})
		s.hellos++
	case "MONITOR", "SYNC", "PSYNC":
		s.retire("MONITOR or a replication stream: replies are no longer one per command")
		plain()
	default:
		w := subWordOfName(name)
		if w == subNone {
			if !s.inTx && blockingName(name, f) {
				s.q.push(entry{kind: entryBlocking})
				s.blocked++
				info.blocking = true
			} else {
				plain()
			}
			break
		}
		if s.inTx {
			s.retire("a subscribe command inside MULTI")
			plain()
			break
		}
		n := f.N - 1
		switch {
		case n == 0 && w.unsubscribes():
			n = dynamic
		case n == 0:
			n = 1 // an error reply: wrong number of arguments
		}
		s.q.push(entry{kind: entrySub, word: w, n: n})
		s.subs++
	}
	info.retire = s.retired
	return info
}

// silentOK reports the commands that may go unanswered (CLIENT REPLY OFF
// or SKIP) and still be followed exactly: those whose reply changes nothing
// but the count, and MULTI, EXEC and DISCARD (which the write side follows).
// The others (RESET, HELLO, subscribe and blocking commands, AUTH, MONITOR)
// retire the connection when unanswered.
func silentOK(name []byte) bool {
	switch string(name) {
	case "RESET", "HELLO", "AUTH", "MONITOR", "SYNC", "PSYNC":
		return false
	}
	return subWordOfName(name) == subNone && !alwaysBlocks(name) && !isXRead(name)
}

// clientReply follows CLIENT REPLY ON|OFF|SKIP as redis-server runs it
// (networking.c clientCommand and resetClient): ON clears both modes and is
// answered +OK (even right after SKIP, whose flag it clears first); OFF is
// not answered and turns replies off; SKIP is not answered and, unless
// replies are off, skips the next command's reply. Anything else (another
// argument count or mode, or inside MULTI, where it runs at EXEC) retires
// the connection.
//
// A CLIENT REPLY OFF or SKIP the server refuses (an ACL without CLIENT)
// answers an error where the tracker expects nothing: that reply is one to
// no command, which retires the connection, or fails it when the reply of
// an AUTH of the wrapper is still owed (never guessed).
func (s *state) clientReply(f *resp.Frame) {
	silent := s.silent()
	s.skipNext = false
	if s.inTx || f.N != 3 || f.HeadLen < 3 {
		s.retire("CLIENT REPLY inside MULTI, or with arguments other than ON, OFF or SKIP")
		if !silent {
			s.q.push(entry{kind: entryPlain, n: 1}) // +QUEUED, or an error
		}
		return
	}
	switch {
	case f.Head[2].EqualFold("ON"):
		s.replyOff = false
		s.q.push(entry{kind: entryPlain, n: 1})
	case f.Head[2].EqualFold("OFF"):
		s.replyOff = true
	case f.Head[2].EqualFold("SKIP"):
		s.skipNext = !s.replyOff
	default:
		s.retire("CLIENT REPLY with a mode other than ON, OFF or SKIP")
		if !silent {
			s.q.push(entry{kind: entryPlain, n: 1}) // a syntax error
		}
	}
}

// helloProto returns the protocol a HELLO asks for (0 when it names none);
// ok is false when it carries arguments the tracker does not follow.
func helloProto(f *resp.Frame) (proto uint8, ok bool) {
	switch {
	case f.N == 1:
		return 0, true
	case f.N == 2 || f.N == 4 && f.HeadLen == 4 && f.Head[2].EqualFold("SETNAME"):
		v, ok := f.Head[1].Int()
		if !ok || (v != 2 && v != 3) {
			return 0, true // refused by the server: no switch
		}
		return uint8(v), true
	}
	return 0, false
}

// replyClass is what a reply frame is, as far as counting goes.
type replyClass uint8

const (
	classAttr    replyClass = iota // an attribute: precedes a reply, is not one
	classMessage                   // a push (or RESP2 subscribed-mode message) that answers no command
	classSub                       // a subscribe-kind frame
	classError                     // an error reply
	classOther                     // any other reply
)

func isErrKind(k resp.Kind) bool { return k == resp.SimpleError || k == resp.BulkError }

// classify tells what a complete reply frame is.
func (s *state) classify(f *resp.Frame) (replyClass, subWord) {
	switch {
	case f.Kind == resp.Attribute:
		return classAttr, subNone
	case isErrKind(f.Kind):
		return classError, subNone
	case f.Kind == resp.Push:
		if f.HeadLen > 0 {
			if w := subWordOf(&f.Head[0]); w != subNone {
				return classSub, w
			}
		}
		return classMessage, subNone
	case f.Kind == resp.Array && s.proto == 2 && f.HeadLen >= 3 && f.N >= 3:
		// RESP2: a subscribe-kind or message array only while subscribed, or
		// as the reply of a subscribe command at the head of the queue.
		h := s.q.head()
		atSub := h != nil && h.kind == entrySub
		if !s.subscribed() && !atSub {
			return classOther, subNone
		}
		if w := subWordOf(&f.Head[0]); w != subNone {
			return classSub, w
		}
		if s.subscribed() && (f.Head[0].EqualFold("message") || f.Head[0].EqualFold("pmessage") || f.Head[0].EqualFold("smessage")) {
			return classMessage, subNone
		}
	}
	return classOther, subNone
}

// stripsNext reports whether the frame whose first byte is b is the reply of
// an AUTH the wrapper wrote, to be removed from the stream. It is decided on
// the first byte, before the frame is complete, so that none of its bytes
// reach the client; reply checks the decision when the frame ends.
func (s *state) stripsNext(b byte) bool {
	if !mayStrip(b) {
		return false
	}
	k := resp.Kind(b)
	for i := s.q.h; i < len(s.q.q); i++ {
		e := &s.q.q[i]
		switch e.kind {
		case entryAuth:
			return true
		case entrySub:
			if isErrKind(k) && e.got == 0 {
				return false // the subscribe command's own error
			}
			// a subscribe command never answers this: it is complete
		default:
			return false
		}
	}
	return false
}

// mayStrip reports whether a frame whose first byte is b can be the reply of
// an AUTH: a simple string or an error.
func mayStrip(b byte) bool {
	k := resp.Kind(b)
	return k == resp.SimpleString || isErrKind(k)
}

// replyResult is what one reply frame did.
type replyResult struct {
	auth       bool   // the frame answered an AUTH of the wrapper
	first      bool   // ... the connection's first AUTH
	gen        uint64 // ... with this token generation
	authErr    string // ... and was this error ("" for +OK)
	desync     string // non-empty: the stream is not what the queue says; fatal when an AUTH reply is owed
	unblocked  bool   // a blocking command was answered
	subChanged bool   // the subscription state changed
}

// reply records one complete reply frame. stripped is the decision
// stripsNext made at its first byte.
func (s *state) reply(f *resp.Frame, stripped bool) (r replyResult) {
	cls, w := s.classify(f)
	switch cls {
	case classAttr, classMessage:
		if stripped {
			r.desync = "an AUTH reply was expected"
		}
		return r
	case classSub:
		h := s.q.head()
		if h != nil && h.kind == entrySub && h.word == w {
			if h.n == dynamic {
				h.n = max(s.heldOf(w), 1)
			}
			h.got++
			h.n--
			if h.n <= 0 {
				s.popSub()
			}
		}
		s.count(f, w)
		r.subChanged = true
		if stripped {
			r.desync = "an AUTH reply was expected"
		}
		return r
	}
	for {
		h := s.q.head()
		if h == nil {
			s.retire("a reply to no command")
			r.desync = "a reply to no command"
			return r
		}
		switch h.kind {
		case entrySub:
			if cls == classError && h.got == 0 {
				s.popSub()
				if stripped {
					r.desync = "an AUTH reply was expected"
				}
				return r
			}
			// A subscribe command answers only subscribe-kind frames, or one
			// error: this frame belongs to the next command.
			s.popSub()
			r.subChanged = true
			continue
		case entryPlain:
			h.n--
			if h.n == 0 {
				s.q.pop()
			}
		case entryBlocking:
			s.q.pop()
			s.blocked--
			r.unblocked = true
		case entryHello:
			if p := h.proto; cls != classError && p != 0 {
				s.proto = p
			}
			s.q.pop()
			s.hellos--
		case entryReset:
			s.q.pop()
			s.proto = 2
			s.chans, s.pats, s.shards = 0, 0, 0
			s.gen = 0
			r.subChanged = true
		case entryAuth:
			r.auth, r.first, r.gen = true, h.first, h.gen
			gen := h.gen
			s.q.pop()
			s.auths--
			switch {
			case cls == classError:
				r.authErr = string(f.Head[0].Bytes())
				if r.authErr == "" {
					r.authErr = "an empty error"
				}
			case f.Kind == resp.SimpleString && f.Head[0].EqualFold("OK"):
				if gen > s.gen {
					s.gen = gen
				}
			default:
				r.desync = "the reply of an AUTH is neither OK nor an error"
			}
			if !stripped && r.desync == "" {
				r.desync = "an AUTH reply reached the client"
			}
			return r
		}
		if stripped {
			r.desync = "an AUTH reply was expected"
		}
		return r
	}
}

func (s *state) popSub() {
	s.q.pop()
	s.subs--
}

// heldOf returns the subscriptions a bare unsubscribe of kind w removes.
func (s *state) heldOf(w subWord) int64 {
	switch w {
	case subUnsubscribe:
		return s.chans
	case subPUnsubscribe:
		return s.pats
	default:
		return s.shards
	}
}

// count updates the subscription counts from a subscribe-kind frame: its
// third element is the number of subscriptions the connection holds after it
// (channels and patterns together; shard channels apart).
func (s *state) count(f *resp.Frame, w subWord) {
	if f.HeadLen < 3 {
		return
	}
	n, ok := f.Head[2].Int()
	if !ok || n < 0 {
		return
	}
	switch w {
	case subSSubscribe, subSUnsubscribe:
		s.shards = n
	case subSubscribe, subUnsubscribe:
		s.chans = max(n-s.pats, 0)
	default:
		s.pats = max(n-s.chans, 0)
	}
}

// onlyAuthsOwed reports that every reply still owed answers an AUTH of the
// wrapper (and one is owed): the client expects nothing, so the wrapper may
// read them itself.
func (s *state) onlyAuthsOwed() bool {
	return s.auths > 0 && s.auths == s.q.len()
}
